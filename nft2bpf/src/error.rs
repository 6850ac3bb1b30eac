//! Errors with a span, rendered as a compiler renders them:
//!
//! ```text
//! fw.nft:5:12: error: datatype mismatch, expected IPv4 address, expression has type Internet protocol
//!     ip saddr tcp
//!              ^~~
//! ```
//!
//! The source line is printed as it is, tabs included, and the caret line
//! repeats the tabs that come before the fault, so the caret stands under
//! it whatever the terminal's tab stops. Other characters take their
//! display width: two columns for East Asian wide characters, none for
//! combining marks, and control characters are printed as escapes
//! ([`bpf_builder::text::escape_char`]) since the text comes from outside.

use std::fmt;

use bpf_builder::text::{escape, escape_char};
use pktmatch::Span;

use crate::source::SourceMap;

/// One error: what is wrong and the bytes it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// What is wrong, in nft's words where it has them.
    pub message: String,
    /// The bytes of the source the error is about.
    pub span: Span,
}

impl Error {
    /// Builds an error for `span`.
    pub fn new(message: impl Into<String>, span: Span) -> Self {
        Error {
            message: message.into(),
            span,
        }
    }

    /// `FILE:LINE:COL: error: MESSAGE`, the source line and a caret line
    /// under the span; then, for a fault in an included file, one
    /// `FILE:LINE:COL: note: included from here` line per level.
    pub fn render(&self, map: &SourceMap) -> String {
        let Some(loc) = map.locate(self.span) else {
            return format!("error: {}\n", escape(&self.message));
        };
        let file = map.file(loc.file);
        let mut out = format!(
            "{}:{}:{}: error: {}\n",
            escape(&file.name),
            loc.line,
            loc.column,
            escape(&self.message)
        );
        let offset = map.offset_in(file, self.span.start);
        let line = file.line_text(offset);
        let line_start = file.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        // A span may start past the shown text: at a line's `\r`, which
        // `line_text` drops.
        let fault = (offset - line_start).min(line.len());
        let fault_end = map
            .offset_in(file, self.span.end.max(self.span.start))
            .saturating_sub(line_start)
            .clamp(fault, line.len());
        let (shown, caret) = caret_line(line, fault, fault_end);
        out.push_str(&shown);
        out.push('\n');
        out.push_str(&caret);
        out.push('\n');
        let mut from = file.included_from;
        while let Some(span) = from {
            let Some(at) = map.locate(span) else { break };
            let parent = map.file(at.file);
            out.push_str(&format!(
                "{}:{}:{}: note: included from here\n",
                escape(&parent.name),
                at.line,
                at.column
            ));
            from = parent.included_from;
        }
        out
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// The errors of a ruleset, in source order; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Errors(pub Vec<Error>);

impl Errors {
    /// Every error rendered (see [`Error::render`]), one after the other.
    pub fn render(&self, map: &SourceMap) -> String {
        self.0.iter().map(|e| e.render(map)).collect()
    }
}

impl From<Error> for Errors {
    fn from(e: Error) -> Self {
        Errors(vec![e])
    }
}

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}

/// The line as printed and the caret line under bytes `start..end` of it.
fn caret_line(line: &str, start: usize, end: usize) -> (String, String) {
    let mut shown = String::with_capacity(line.len());
    let mut caret = String::new();
    let mut marked = false;
    for (at, c) in line.char_indices() {
        let (text, width) = match (c, escape_char(c)) {
            ('\t', _) => ("\t".to_string(), 0),
            (_, Some(e)) => {
                let n = e.len();
                (e, n)
            }
            (c, None) => (c.to_string(), display_width(c)),
        };
        shown.push_str(&text);
        if at < start {
            if c == '\t' {
                caret.push('\t');
            } else {
                caret.extend(std::iter::repeat_n(' ', width));
            }
        } else if at < end {
            let width = if c == '\t' { 1 } else { width };
            for _ in 0..width {
                caret.push(if marked { '~' } else { '^' });
                marked = true;
            }
        }
    }
    if !marked {
        caret.push('^');
    }
    (shown, caret)
}

/// How many terminal columns `c` takes: 0 for combining marks and other
/// zero-width characters, 2 for East Asian wide and full-width ones
/// (the main blocks of Unicode's `W` and `F` classes), 1 otherwise.
fn display_width(c: char) -> usize {
    let u = c as u32;
    let zero = matches!(u,
        0x0300..=0x036f | 0x0483..=0x0489 | 0x0591..=0x05bd | 0x0610..=0x061a
        | 0x064b..=0x065f | 0x0e31 | 0x0e34..=0x0e3a | 0x1ab0..=0x1aff
        | 0x1dc0..=0x1dff | 0x200b..=0x200f | 0x20d0..=0x20ff | 0xfe00..=0xfe0f
        | 0xfe20..=0xfe2f);
    let wide = matches!(u,
        0x1100..=0x115f | 0x2e80..=0x303e | 0x3041..=0x33ff | 0x3400..=0x4dbf
        | 0x4e00..=0x9fff | 0xa000..=0xa4cf | 0xac00..=0xd7a3 | 0xf900..=0xfaff
        | 0xfe30..=0xfe4f | 0xff00..=0xff60 | 0xffe0..=0xffe6 | 0x1f300..=0x1f64f
        | 0x1f900..=0x1f9ff | 0x20000..=0x3fffd);
    if zero {
        0
    } else if wide {
        2
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(text: &str, fault: &str) -> String {
        let mut map = SourceMap::new();
        map.add("fw.nft", None, text, None);
        let at = text.find(fault).unwrap();
        Error::new("bad", Span::new(at, at + fault.len())).render(&map)
    }

    #[test]
    fn the_caret_follows_tabs() {
        let r = render("table netdev t {\n\t\tip saddr tcp\n}\n", "tcp");
        assert_eq!(
            r,
            "fw.nft:2:12: error: bad\n\t\tip saddr tcp\n\t\t         ^~~\n"
        );
    }

    #[test]
    fn the_caret_counts_display_columns() {
        // é is two bytes and one column; 中 is three bytes and two columns.
        let r = render("# é中\nip saddr x é中 tcp", "tcp");
        let lines: Vec<&str> = r.lines().collect();
        assert_eq!(lines[0], "fw.nft:2:15: error: bad");
        assert_eq!(lines[2], format!("{}^~~", " ".repeat(15)));
        // A fault on a wide character is two columns wide.
        let r = render("x 中 y", "中");
        assert_eq!(r.lines().nth(2), Some("  ^~"));
    }

    #[test]
    fn control_characters_are_escaped_and_the_caret_follows() {
        let r = render("a\x1b[2J b", "b");
        let lines: Vec<&str> = r.lines().collect();
        assert_eq!(lines[1], "a\\x1b[2J b");
        assert_eq!(lines[2], "         ^");
    }

    #[test]
    fn an_empty_span_gets_one_caret_and_a_span_over_lines_stops_at_the_end_of_the_first() {
        let mut map = SourceMap::new();
        map.add("f", None, "ab\ncd", None);
        let r = Error::new("x", Span::new(5, 5)).render(&map);
        assert_eq!(r, "f:2:3: error: x\ncd\n  ^\n");
        let r = Error::new("x", Span::new(1, 4)).render(&map);
        assert_eq!(r, "f:1:2: error: x\nab\n ^\n");
    }

    #[test]
    fn included_files_name_the_include() {
        let mut map = SourceMap::new();
        map.add("main.nft", None, "include \"sub.nft\"\n", None);
        let sub = map.add("sub.nft", None, "oops\n", Some(Span::new(0, 17)));
        let start = map.file(sub).start;
        let r = Error::new("bad", Span::new(start, start + 4)).render(&map);
        assert_eq!(
            r,
            "sub.nft:1:1: error: bad\noops\n^~~~\nmain.nft:1:1: note: included from here\n"
        );
    }
}
