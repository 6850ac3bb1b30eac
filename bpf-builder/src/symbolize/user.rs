//! A process's addresses against its `/proc/PID/maps` and the ELF
//! symbols (`.symtab`, `.dynsym`) of the files mapped executable there.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};

use super::table::{Entry, Table};
use super::{Symbol, SymbolizeError};

/// One executable mapping of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Region {
    start: u64,
    end: u64,
    /// The file offset mapped at `start`.
    offset: u64,
    path: PathBuf,
}

/// A file's function symbols and where its loadable segments are.
#[derive(Debug)]
struct FileSymbols {
    table: Table,
    /// (file offset, file size, virtual address) of each segment.
    segments: Vec<(u64, u64, u64)>,
}

/// The symbols of one process's executable mappings; files are read
/// the first time an address in them is resolved.
#[derive(Debug)]
pub struct ProcessSymbols {
    regions: Vec<Region>,
    /// Per file; `None` when it cannot be read or parsed.
    files: HashMap<PathBuf, Option<FileSymbols>>,
}

impl ProcessSymbols {
    /// Reads `/proc/PID/maps` now: resolve addresses before the process
    /// maps or unmaps files.
    pub fn new(pid: u32) -> Result<ProcessSymbols, SymbolizeError> {
        let path = PathBuf::from(format!("/proc/{pid}/maps"));
        let text = std::fs::read_to_string(&path)
            .map_err(|source| SymbolizeError::Read { path, source })?;
        Ok(ProcessSymbols {
            regions: parse_maps(&text),
            files: HashMap::new(),
        })
    }

    /// The function that holds `addr`, with the file as its module;
    /// `None` when no file is mapped executable there or its symbols do
    /// not cover it.
    pub fn resolve(&mut self, addr: u64) -> Option<Symbol> {
        let region = self
            .regions
            .iter()
            .find(|r| (r.start..r.end).contains(&addr))?;
        let file_offset = addr - region.start + region.offset;
        let file = self
            .files
            .entry(region.path.clone())
            .or_insert_with(|| read_symbols(&region.path))
            .as_ref()?;
        let vaddr = file.segments.iter().find_map(|&(off, size, vaddr)| {
            (file_offset >= off && file_offset - off < size).then(|| vaddr + (file_offset - off))
        })?;
        let (e, offset) = file.table.find(vaddr)?;
        Some(Symbol {
            name: e.name.clone(),
            offset,
            module: Some(region.path.display().to_string()),
        })
    }
}

/// The executable file mappings of `/proc/PID/maps` text (`start-end
/// perms offset dev inode path` lines); other lines are skipped.
fn parse_maps(text: &str) -> Vec<Region> {
    text.lines().filter_map(parse_maps_line).collect()
}

fn parse_maps_line(line: &str) -> Option<Region> {
    let mut rest = line;
    let mut field = || {
        let s = rest.trim_start();
        let end = s.find(' ').unwrap_or(s.len());
        rest = &s[end..];
        Some(&s[..end]).filter(|f| !f.is_empty())
    };
    let (range, perms, offset) = (field()?, field()?, field()?);
    let (_dev, _inode) = (field()?, field()?);
    let path = rest.trim();
    let executable = perms.as_bytes().get(2) == Some(&b'x');
    if !executable || !path.starts_with('/') {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    Some(Region {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        offset: u64::from_str_radix(offset, 16).ok()?,
        path: PathBuf::from(path),
    })
}

/// The function symbols and segments of the ELF file at `path`.
fn read_symbols(path: &Path) -> Option<FileSymbols> {
    let data = std::fs::read(path).ok()?;
    let file = object::File::parse(&*data).ok()?;
    let entries = file
        .symbols()
        .chain(file.dynamic_symbols())
        .filter(|s| s.kind() == SymbolKind::Text && s.is_definition() && s.address() != 0)
        .filter_map(|s| {
            Some(Entry {
                addr: s.address(),
                size: s.size(),
                name: s.name().ok()?.to_string(),
                module: None,
            })
        })
        .collect();
    let segments = file
        .segments()
        .map(|seg| {
            let (off, size) = seg.file_range();
            (off, size, seg.address())
        })
        .collect();
    Some(FileSymbols {
        table: Table::new(entries, Vec::new()),
        segments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_keep_executable_files_only() {
        let r = parse_maps(
            "55d0a0000000-55d0a0001000 r--p 00000000 08:01 123 /usr/bin/x\n\
             55d0a0001000-55d0a0005000 r-xp 00001000 08:01 123 /usr/bin/x\n\
             7f0000000000-7f0000001000 r-xp 00000000 00:00 0 [vdso]\n\
             7f0000002000-7f0000003000 r-xp 00002000 08:01 9   /opt/a b/lib.so\n\
             garbage\n\
             zz-1 r-xp 0 0 0 /x\n",
        );
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0],
            Region {
                start: 0x55d0_a000_1000,
                end: 0x55d0_a000_5000,
                offset: 0x1000,
                path: "/usr/bin/x".into()
            }
        );
        assert_eq!(r[1].path, Path::new("/opt/a b/lib.so"));
    }

    #[inline(never)]
    fn a_function_of_this_binary() -> u64 {
        std::hint::black_box(7)
    }

    #[test]
    fn an_address_of_this_process_names_its_function() {
        let addr = a_function_of_this_binary as fn() -> u64 as usize as u64;
        assert_eq!(a_function_of_this_binary(), 7);
        let mut p = ProcessSymbols::new(std::process::id()).unwrap();
        let s = p.resolve(addr + 1).unwrap();
        assert!(s.name.contains("a_function_of_this_binary"), "{s}");
        assert_eq!(s.offset, 1);
        assert_eq!(p.resolve(0), None);
    }
}
