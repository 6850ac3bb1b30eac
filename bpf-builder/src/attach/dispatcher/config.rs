//! The dispatcher's configuration record, as libxdp's protocol (version 2)
//! lays it out in the dispatcher's one read-only map.

/// `XDP_DISPATCHER_MAGIC`: the first byte of a version 2 record.
pub const MAGIC: u8 = 236;
/// The protocol version we speak (`XDP_DISPATCHER_VERSION`).
pub const VERSION: u8 = 2;
/// Slots of one dispatcher (`MAX_DISPATCHER_ACTIONS`).
pub const MAX_SLOTS: usize = 10;
/// What an empty slot returns (`XDP_DISPATCHER_RETVAL`); every slot's
/// chain-call set holds it, so a slot whose program went away is passed.
pub const SLOT_RETVAL: u32 = 31;
/// libxdp's run priority for a program that declares none.
pub const DEFAULT_PRIORITY: u32 = 50;
/// `BPF_F_XDP_HAS_FRAGS`, as the record's per-slot flags carry it.
pub const FLAG_FRAGS: u32 = 1 << 5;
/// Bytes of the record: four bytes, then three arrays of ten `u32`.
pub const SIZE: usize = 4 + 3 * 4 * MAX_SLOTS;

/// The record: how many slots run, and per slot the actions that go on to
/// the next slot, the run priority and the load flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Config {
    /// Slots in use (the first `slots` of the arrays).
    pub slots: u8,
    /// Whether the dispatcher itself was loaded with fragment support.
    pub frags: bool,
    /// Per slot: bit `a` set when action `a` goes on to the next slot.
    pub chain_actions: [u32; MAX_SLOTS],
    /// Per slot: the run priority the program was placed with.
    pub priorities: [u32; MAX_SLOTS],
    /// Per slot: [`FLAG_FRAGS`] when the program handles fragments.
    pub flags: [u32; MAX_SLOTS],
}

/// Byte offset of slot `i`'s chain-call set in the record.
pub fn chain_actions_offset(slot: usize) -> u32 {
    (4 + 4 * slot) as u32
}

impl Config {
    /// The record's bytes (native endian, as the map holds it).
    pub fn to_bytes(self) -> [u8; SIZE] {
        let mut b = [0u8; SIZE];
        b[0] = MAGIC;
        b[1] = VERSION;
        b[2] = self.slots;
        b[3] = u8::from(self.frags);
        let arrays = [self.chain_actions, self.priorities, self.flags];
        for (a, array) in arrays.iter().enumerate() {
            for (i, v) in array.iter().enumerate() {
                let at = 4 + 4 * (a * MAX_SLOTS + i);
                b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
            }
        }
        b
    }

    /// Reads a record; `None` unless it is a version 2 record of the
    /// right size with at most [`MAX_SLOTS`] slots in use.
    pub fn from_bytes(b: &[u8]) -> Option<Config> {
        if b.len() != SIZE || b[0] != MAGIC || b[1] != VERSION || usize::from(b[2]) > MAX_SLOTS {
            return None;
        }
        let word = |a: usize, i: usize| {
            let at = 4 + 4 * (a * MAX_SLOTS + i);
            u32::from_ne_bytes(b[at..at + 4].try_into().expect("4 bytes"))
        };
        let mut c = Config {
            slots: b[2],
            frags: b[3] != 0,
            ..Config::default()
        };
        for i in 0..MAX_SLOTS {
            c.chain_actions[i] = word(0, i);
            c.priorities[i] = word(1, i);
            c.flags[i] = word(2, i);
        }
        Some(c)
    }

    /// The version a record claims, when it is a dispatcher record at all
    /// (its first byte is the magic).
    pub fn version_of(b: &[u8]) -> Option<u8> {
        (b.len() >= 2 && b[0] == MAGIC).then(|| b[1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_libxdps() {
        let mut c = Config {
            slots: 2,
            frags: true,
            ..Config::default()
        };
        c.chain_actions[0] = (1 << 2) | (1 << SLOT_RETVAL);
        c.priorities[1] = 7;
        c.flags[9] = FLAG_FRAGS;
        let b = c.to_bytes();
        assert_eq!(b.len(), 124, "sizeof(struct xdp_dispatcher_config)");
        assert_eq!(&b[..4], &[236, 2, 2, 1]);
        assert_eq!(&b[4..8], &0x8000_0004u32.to_ne_bytes());
        assert_eq!(&b[4 + 40 + 4..4 + 40 + 8], &7u32.to_ne_bytes());
        assert_eq!(&b[120..124], &32u32.to_ne_bytes());
        assert_eq!(chain_actions_offset(1), 8);
        assert_eq!(Config::from_bytes(&b), Some(c));
    }

    #[test]
    fn foreign_records_are_refused() {
        let good = Config::default().to_bytes();
        let mut v1 = good;
        v1[1] = 1;
        assert_eq!(Config::from_bytes(&v1), None);
        assert_eq!(Config::version_of(&v1), Some(1));
        assert_eq!(Config::from_bytes(&good[..100]), None);
        let mut many = good;
        many[2] = 11;
        assert_eq!(Config::from_bytes(&many), None);
        assert_eq!(Config::version_of(&[0, 2]), None);
    }
}
