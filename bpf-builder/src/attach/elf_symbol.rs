//! Uprobe targets: a symbol of an ELF file resolved to the file offset a
//! uprobe takes.

use std::path::Path;

use object::{Object, ObjectSegment, ObjectSymbol};

use super::AttachError;
use crate::text::escape;

/// The file offset of the function (or other defined symbol) `symbol` in
/// the ELF file `path`: what [`perf_event::uprobe`](super::perf_event::uprobe)
/// and [`kprobe_multi::attach_uprobes`](super::kprobe_multi::attach_uprobes)
/// take. Looks in `.symtab`, then `.dynsym` (a stripped library keeps its
/// exported functions there), and maps the symbol's address to the file
/// through the loadable segment that holds it.
pub fn symbol_offset(path: impl AsRef<Path>, symbol: &str) -> Result<u64, AttachError> {
    let path = path.as_ref();
    let data = std::fs::read(path).map_err(|e| AttachError::NotFound {
        what: format!(
            "cannot read {} to find `{}`: {e}",
            path.display(),
            escape(symbol)
        ),
    })?;
    offset_in(&data, symbol).map_err(|why| AttachError::NotFound {
        what: format!("{}: {why}", path.display()),
    })
}

/// [`symbol_offset`] on the file's bytes; the error says what is wrong.
fn offset_in(data: &[u8], symbol: &str) -> Result<u64, String> {
    let file = object::File::parse(data).map_err(|e| format!("not an ELF file ({e})"))?;
    let found = file
        .symbols()
        .chain(file.dynamic_symbols())
        .find(|s| s.is_definition() && s.name() == Ok(symbol))
        .ok_or_else(|| {
            format!(
                "no symbol `{}` defined in .symtab or .dynsym (misspelt, static in a stripped \
                 file, or defined in another library)",
                escape(symbol)
            )
        })?;
    let addr = found.address();
    file.segments()
        .find_map(|seg| {
            let (offset, size) = seg.file_range();
            let start = seg.address();
            (addr >= start && addr - start < size).then(|| offset + (addr - start))
        })
        .ok_or_else(|| {
            format!(
                "symbol `{}` at {addr:#x} is in no loadable segment of the file",
                escape(symbol)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_missing_symbols_are_errors_not_panics() {
        assert!(
            offset_in(b"not an elf", "f")
                .unwrap_err()
                .contains("not an ELF")
        );
        assert!(offset_in(&[0x7f, b'E', b'L', b'F', 2, 1, 1], "f").is_err());
        let me = std::fs::read("/proc/self/exe").unwrap();
        let e = offset_in(&me, "no_such_symbol_anywhere").unwrap_err();
        assert!(e.contains("no symbol `no_such_symbol_anywhere`"), "{e}");
        let e = symbol_offset("/nonexistent/file", "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/file") && e.contains("`f`"), "{e}");
    }
}
