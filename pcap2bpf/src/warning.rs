//! Warnings of a compilation: the filter compiles, but probably not to
//! what its author meant.

use std::fmt;

/// A warning about a filter that compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Warning {
    /// No packet can match: the program rejects everything (libpcap's
    /// optimiser says the same).
    RejectsAll,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::RejectsAll => f.write_str("expression rejects all packets"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Warning;

    #[test]
    fn text_is_libpcaps() {
        assert_eq!(
            Warning::RejectsAll.to_string(),
            "expression rejects all packets"
        );
    }
}
