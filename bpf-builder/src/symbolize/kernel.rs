//! Kernel addresses against `/proc/kallsyms`.

use std::path::Path;

use super::table::{Entry, Table};
use super::{Symbol, SymbolizeError};

/// The kernel's function symbols, modules' included, sorted.
#[derive(Debug)]
pub struct KernelSymbols {
    table: Table,
}

impl KernelSymbols {
    /// Reads `/proc/kallsyms`.
    pub fn load() -> Result<KernelSymbols, SymbolizeError> {
        let path = Path::new("/proc/kallsyms");
        let text = std::fs::read_to_string(path).map_err(|source| SymbolizeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
    }

    /// The symbols of text in the format of `/proc/kallsyms` (`address
    /// type name [module]` lines; lines that do not parse are skipped).
    /// Only text symbols (types `t`, `T`) are kept.
    pub fn parse(text: &str) -> Result<KernelSymbols, SymbolizeError> {
        let mut modules: Vec<String> = Vec::new();
        let mut entries = Vec::new();
        let mut all_zero = true;
        for line in text.lines() {
            let mut fields = line.split_ascii_whitespace();
            let (Some(addr), Some(kind), Some(name)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let Ok(addr) = u64::from_str_radix(addr, 16) else {
                continue;
            };
            all_zero &= addr == 0;
            if !matches!(kind, "t" | "T") {
                continue;
            }
            let module = fields
                .next()
                .and_then(|m| m.strip_prefix('[')?.strip_suffix(']'))
                .map(|m| match modules.iter().position(|x| x == m) {
                    Some(i) => i,
                    None => {
                        modules.push(m.to_string());
                        modules.len() - 1
                    }
                });
            entries.push(Entry {
                addr,
                size: 0,
                name: name.to_string(),
                module,
            });
        }
        if all_zero && !entries.is_empty() {
            return Err(SymbolizeError::Restricted);
        }
        Ok(KernelSymbols {
            table: Table::new(entries, modules),
        })
    }

    /// How many symbols there are.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// The function that holds `addr`: the nearest text symbol at or
    /// below it.
    pub fn resolve(&self, addr: u64) -> Option<Symbol> {
        let (e, offset) = self.table.find(addr)?;
        Some(Symbol {
            name: e.name.clone(),
            offset,
            module: e.module.map(|m| self.table.modules[m].clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kallsyms_lines_with_modules_and_garbage() {
        let k = KernelSymbols::parse(
            "ffffffff81000000 T _stext\n\
             ffffffff81001000 t helper\n\
             ffffffff81002000 D some_data\n\
             not a line\n\
             zz T bad_address\n\
             ffffffffc0001000 t mod_fn\t[nf_tables]\n",
        )
        .unwrap();
        assert_eq!(k.len(), 3);
        let s = k.resolve(0xffff_ffff_8100_2010).unwrap();
        assert_eq!(
            (s.name.as_str(), s.offset, s.module),
            ("helper", 0x1010, None)
        );
        let s = k.resolve(0xffff_ffff_c000_1004).unwrap();
        assert_eq!(s.to_string(), "mod_fn+0x4 [nf_tables]");
        assert_eq!(k.resolve(0x1000), None);
    }

    #[test]
    fn zeroed_addresses_say_kptr_restrict() {
        let e = KernelSymbols::parse("0000000000000000 T _stext\n0000000000000000 t f\n");
        assert!(matches!(e, Err(SymbolizeError::Restricted)));
        assert!(KernelSymbols::parse("").unwrap().is_empty());
    }
}
