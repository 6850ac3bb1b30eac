//! A sorted table of symbols: the nearest one at or below an address.

/// One symbol: start address, size (0: unknown) and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub addr: u64,
    pub size: u64,
    pub name: String,
    /// Index into the table's module names.
    pub module: Option<usize>,
}

/// Symbols sorted by address.
#[derive(Debug, Default)]
pub(crate) struct Table {
    entries: Vec<Entry>,
    pub modules: Vec<String>,
}

impl Table {
    /// A table of `entries`, in any order.
    pub fn new(mut entries: Vec<Entry>, modules: Vec<String>) -> Table {
        entries.sort_by_key(|e| e.addr);
        Table { entries, modules }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The symbol that holds `addr` and the offset into it: the last one
    /// starting at or below it, unless its known size ends before `addr`.
    pub fn find(&self, addr: u64) -> Option<(&Entry, u64)> {
        let i = self.entries.partition_point(|e| e.addr <= addr);
        let e = self.entries.get(i.checked_sub(1)?)?;
        let offset = addr - e.addr;
        if e.size != 0 && offset >= e.size {
            return None;
        }
        Some((e, offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(addr: u64, size: u64, name: &str) -> Entry {
        Entry {
            addr,
            size,
            name: name.into(),
            module: None,
        }
    }

    #[test]
    fn nearest_lower_symbol_within_its_size() {
        let t = Table::new(vec![e(0x200, 0, "b"), e(0x100, 0x10, "a")], vec![]);
        assert_eq!(t.find(0x50), None);
        assert_eq!(t.find(0x100).map(|(e, o)| (&*e.name, o)), Some(("a", 0)));
        assert_eq!(t.find(0x10f).map(|(e, o)| (&*e.name, o)), Some(("a", 0xf)));
        assert_eq!(t.find(0x110), None, "past a's size");
        assert_eq!(t.find(u64::MAX).map(|(e, _)| &*e.name), Some("b"));
        assert_eq!(Table::default().find(1), None);
    }
}
