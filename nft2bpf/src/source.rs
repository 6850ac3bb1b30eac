//! The text of a ruleset and of the files it includes, and the way from a
//! [`Span`] back to `FILE:LINE:COL`.
//!
//! Every file gets its own stretch of one position space: the first file
//! starts at 0, each further file one past the end of the one before, so a
//! span is two numbers (as in [`pktmatch::Span`], which the IR carries on
//! to the code) and still says which file it is in. The gap of one
//! between files lets a span at a file's end (`start == end == len`) name
//! that file, not the next.

use std::path::{Path, PathBuf};

use cranelift_entity::{PrimaryMap, entity_impl};
use pktmatch::Span;

/// A file of a [`SourceMap`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(u32);
entity_impl!(FileId, "file");

/// One file's text and where it sits in the position space.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The name errors print: the path as given, or a label such as
    /// `<stdin>`.
    pub name: String,
    /// Where the file was read from, when it was read from one: includes
    /// are found relative to its directory.
    pub path: Option<PathBuf>,
    /// The file's text.
    pub text: String,
    /// The position of the file's first byte.
    pub start: usize,
    /// The `include` that brought the file in, for the file a ruleset
    /// includes.
    pub included_from: Option<Span>,
    /// The byte offset (in `text`) of the start of every line.
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// The position one past the file's last byte.
    pub fn end(&self) -> usize {
        self.start + self.text.len()
    }

    /// The 1-based line of a byte offset into the file, and the offset of
    /// that line's start.
    fn line_of(&self, offset: usize) -> (usize, usize) {
        let index = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        (index + 1, self.line_starts[index])
    }

    /// The text of the line that holds `offset`, without its newline.
    pub fn line_text(&self, offset: usize) -> &str {
        let (_, start) = self.line_of(offset);
        let rest = &self.text[start..];
        let end = rest.find('\n').unwrap_or(rest.len());
        rest[..end].strip_suffix('\r').unwrap_or(&rest[..end])
    }
}

/// A place in a source file, 1-based, as compilers print it. The column
/// counts characters (a tab is one), as `nft` counts bytes for ASCII
/// text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub file: FileId,
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1, in characters.
    pub column: usize,
}

/// The files of one ruleset: the one given and the ones it includes.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: PrimaryMap<FileId, SourceFile>,
}

impl SourceMap {
    /// An empty map.
    pub fn new() -> Self {
        SourceMap::default()
    }

    /// Adds a file's text; `path` is where it was read from, if anywhere.
    pub fn add(
        &mut self,
        name: impl Into<String>,
        path: Option<&Path>,
        text: impl Into<String>,
        included_from: Option<Span>,
    ) -> FileId {
        let text = text.into();
        let start = self.files.values().last().map_or(0, |f| f.end() + 1);
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(at, _)| at + 1));
        self.files.push(SourceFile {
            name: name.into(),
            path: path.map(Path::to_path_buf),
            text,
            start,
            included_from,
            line_starts,
        })
    }

    /// A file.
    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id]
    }

    /// All files, in the order they were added.
    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files.iter()
    }

    /// The file a position is in; positions past the last file count as
    /// the last file's end. `None` when the map is empty.
    pub fn file_at(&self, pos: usize) -> Option<FileId> {
        let index = self.files.values().rposition(|f| f.start <= pos)?;
        Some(FileId::from_u32(index as u32))
    }

    /// Where a span starts: file, line and column.
    pub fn locate(&self, span: Span) -> Option<Location> {
        let file = self.file_at(span.start)?;
        let f = &self.files[file];
        let offset = self.offset_in(f, span.start);
        let (line, line_start) = f.line_of(offset);
        let column = f.text[line_start..offset].chars().count() + 1;
        Some(Location { file, line, column })
    }

    /// The text a span covers (empty when the span leaves its file).
    pub fn snippet(&self, span: Span) -> &str {
        let Some(file) = self.file_at(span.start) else {
            return "";
        };
        let f = &self.files[file];
        let start = self.offset_in(f, span.start);
        let end = self.offset_in(f, span.end.max(span.start));
        f.text.get(start..end).unwrap_or("")
    }

    /// The byte offset of a position inside file `f`, clamped to the file
    /// and moved back to a character boundary.
    /// How code generation names the source of a test from `span`:
    /// `FILE:LINE:COL` and the source line (an empty annotation when the
    /// span is in no file), for listings and the verifier's errors.
    pub fn annotation(&self, span: Span) -> bpf_builder::asm::Annotation {
        let Some(loc) = self.locate(span) else {
            return bpf_builder::asm::Annotation::new("");
        };
        let f = &self.files[loc.file];
        let line = f.line_text(self.offset_in(f, span.start));
        bpf_builder::asm::Annotation::at(
            f.name.clone(),
            loc.line as u32,
            loc.column as u32,
            line.to_string(),
        )
    }

    pub(crate) fn offset_in(&self, f: &SourceFile, pos: usize) -> usize {
        let mut offset = pos.saturating_sub(f.start).min(f.text.len());
        while !f.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_name_their_file_line_and_column() {
        let mut map = SourceMap::new();
        let a = map.add("a.nft", None, "ab\ncd\n", None);
        let b = map.add("b.nft", None, "\té x", None);
        // a: 0..6, b starts at 7.
        assert_eq!(map.file(b).start, 7);
        let at = |pos| map.locate(Span::new(pos, pos)).unwrap();
        assert_eq!(
            at(0),
            Location {
                file: a,
                line: 1,
                column: 1
            }
        );
        assert_eq!(
            at(4),
            Location {
                file: a,
                line: 2,
                column: 2
            }
        );
        // The end of a file is still in it.
        assert_eq!(
            at(6),
            Location {
                file: a,
                line: 3,
                column: 1
            }
        );
        // `x` is the fourth character of b's line: tab, é, space, x.
        assert_eq!(
            at(7 + 4),
            Location {
                file: b,
                line: 1,
                column: 4
            }
        );
        assert_eq!(map.snippet(Span::new(7 + 1, 7 + 3)), "é");
        assert_eq!(map.file(a).line_text(4), "cd");
    }

    #[test]
    fn an_empty_map_locates_nothing() {
        assert!(SourceMap::new().locate(Span::new(0, 0)).is_none());
    }
}
