//! Plain-old-data keys and values: types whose map representation is a
//! fixed number of bytes, converted to and from those bytes explicitly
//! (no `unsafe`, no layout assumptions).
//!
//! [`Pod`] is implemented for the integers (native byte order, as
//! programs read them), arrays of `Pod` types (`[u8; N]` among them), and
//! the ready-made network keys: [`MacAddr`], [`Ipv4Addr`] and
//! [`Ipv6Addr`] (network byte order, as packets hold them) and
//! [`LpmKey`], the key of an LPM trie ([`Ipv4Prefix`], [`Ipv6Prefix`]).
//!
//! Typed entries go into an object's initial contents with
//! [`Object::add_typed_entry`](crate::object::Object::add_typed_entry)
//! and into a loaded map through
//! [`Map::typed`](crate::handle::Map::typed).
//!
//! ```
//! use std::net::Ipv4Addr;
//! use bpf_builder::pod::{Ipv4Prefix, MacAddr, Pod};
//!
//! // An LPM trie key: the prefix length in host order, then the address
//! // in network order (`struct bpf_lpm_trie_key`).
//! let key = Ipv4Prefix::new(Ipv4Addr::new(10, 1, 0, 0), 16);
//! let mut bytes = 16u32.to_ne_bytes().to_vec();
//! bytes.extend([10, 1, 0, 0]);
//! assert_eq!(key.to_bytes(), bytes);
//! assert_eq!(Ipv4Prefix::read(&bytes), key);
//! assert_eq!(key.to_string(), "10.1.0.0/16");
//!
//! let mac: MacAddr = "02:00:00:00:00:01".parse().unwrap();
//! assert_eq!(mac.to_bytes(), [2, 0, 0, 0, 0, 1]);
//!
//! // A struct value: write each field at its C offset.
//! struct Counters {
//!     packets: u64,
//!     bytes: u64,
//! }
//!
//! impl Pod for Counters {
//!     const SIZE: usize = 16;
//!     fn write(&self, out: &mut [u8]) {
//!         self.packets.write(&mut out[..8]);
//!         self.bytes.write(&mut out[8..]);
//!     }
//!     fn read(bytes: &[u8]) -> Self {
//!         Counters { packets: u64::read(&bytes[..8]), bytes: u64::read(&bytes[8..]) }
//!     }
//! }
//! ```

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A type stored in maps as exactly [`SIZE`](Pod::SIZE) bytes.
///
/// `write` and `read` convert explicitly, so an implementation says which
/// byte order and which padding the kernel side sees. Both take slices of
/// exactly `SIZE` bytes and may panic on any other length; the typed map
/// APIs check the sizes once, against the map's key and value sizes.
pub trait Pod: Sized {
    /// Bytes of the map representation.
    const SIZE: usize;

    /// Writes the map representation into `out` (`SIZE` bytes).
    fn write(&self, out: &mut [u8]);

    /// Reads a value from its map representation (`SIZE` bytes).
    fn read(bytes: &[u8]) -> Self;

    /// The map representation as a vector.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; Self::SIZE];
        self.write(&mut out);
        out
    }
}

macro_rules! integer_pod {
    ($($t:ty),*) => {$(
        /// Native byte order, as a program loads it.
        impl Pod for $t {
            const SIZE: usize = std::mem::size_of::<$t>();

            fn write(&self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_ne_bytes());
            }

            fn read(bytes: &[u8]) -> Self {
                <$t>::from_ne_bytes(bytes.try_into().expect("Pod::read takes SIZE bytes"))
            }
        }
    )*};
}

integer_pod!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128);

/// The elements one after the other, as a C array.
impl<T: Pod, const N: usize> Pod for [T; N] {
    const SIZE: usize = T::SIZE * N;

    fn write(&self, out: &mut [u8]) {
        assert_eq!(out.len(), Self::SIZE, "Pod::write takes SIZE bytes");
        for (i, item) in self.iter().enumerate() {
            item.write(&mut out[i * T::SIZE..(i + 1) * T::SIZE]);
        }
    }

    fn read(bytes: &[u8]) -> Self {
        assert_eq!(bytes.len(), Self::SIZE, "Pod::read takes SIZE bytes");
        std::array::from_fn(|i| T::read(&bytes[i * T::SIZE..(i + 1) * T::SIZE]))
    }
}

/// Network byte order: the four octets as a packet holds them.
impl Pod for Ipv4Addr {
    const SIZE: usize = 4;

    fn write(&self, out: &mut [u8]) {
        out.copy_from_slice(&self.octets());
    }

    fn read(bytes: &[u8]) -> Self {
        Ipv4Addr::from(<[u8; 4]>::try_from(bytes).expect("Pod::read takes SIZE bytes"))
    }
}

/// Network byte order: the sixteen octets as a packet holds them.
impl Pod for Ipv6Addr {
    const SIZE: usize = 16;

    fn write(&self, out: &mut [u8]) {
        out.copy_from_slice(&self.octets());
    }

    fn read(bytes: &[u8]) -> Self {
        Ipv6Addr::from(<[u8; 16]>::try_from(bytes).expect("Pod::read takes SIZE bytes"))
    }
}

/// An Ethernet (MAC) address: six bytes in the order of the frame.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The broadcast address `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// The six bytes.
    pub fn octets(self) -> [u8; 6] {
        self.0
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(bytes: [u8; 6]) -> Self {
        MacAddr(bytes)
    }
}

/// `02:00:00:00:00:01`: lower-case hex, colon-separated.
impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// A string that is not six colon-separated hex bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a MAC address (six hex bytes separated by colons)")]
pub struct MacAddrParseError(String);

/// Six hex bytes separated by colons (`02:00:00:00:00:01`, either case,
/// one or two digits each).
impl FromStr for MacAddr {
    type Err = MacAddrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MacAddrParseError(s.to_string());
        let mut bytes = [0u8; 6];
        let mut parts = s.split(':');
        for b in &mut bytes {
            let part = parts.next().ok_or_else(err)?;
            if part.is_empty() || part.len() > 2 {
                return Err(err());
            }
            *b = u8::from_str_radix(part, 16).map_err(|_| err())?;
        }
        match parts.next() {
            Some(_) => Err(err()),
            None => Ok(MacAddr(bytes)),
        }
    }
}

impl Pod for MacAddr {
    const SIZE: usize = 6;

    fn write(&self, out: &mut [u8]) {
        out.copy_from_slice(&self.0);
    }

    fn read(bytes: &[u8]) -> Self {
        MacAddr(bytes.try_into().expect("Pod::read takes SIZE bytes"))
    }
}

/// The key of an LPM trie (`struct bpf_lpm_trie_key`): a u32 prefix
/// length in bits, in host byte order, then the data (`A`, an address in
/// network byte order). The map's key size is `4 + A::SIZE`
/// ([`MapSpec::lpm_trie`](crate::map::MapSpec::lpm_trie) with
/// `A::SIZE` data bytes).
///
/// The trie compares only the first `prefix_len` bits of the data; the
/// kernel refuses a prefix longer than the data (`EINVAL`). Lookups,
/// from programs or [`Map::lookup`](crate::handle::Map::lookup), pass the
/// full length ([`LpmKey::host`]) and find the longest stored prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct LpmKey<A> {
    /// Length of the prefix in bits.
    pub prefix_len: u32,
    /// The data (address) the prefix is taken from.
    pub data: A,
}

/// An IPv4 prefix: the key of an LPM trie with 4 data bytes (8-byte keys).
pub type Ipv4Prefix = LpmKey<Ipv4Addr>;
/// An IPv6 prefix: the key of an LPM trie with 16 data bytes (20-byte keys).
pub type Ipv6Prefix = LpmKey<Ipv6Addr>;

impl<A: Pod> LpmKey<A> {
    /// The first `prefix_len` bits of `data`.
    pub fn new(data: A, prefix_len: u32) -> Self {
        LpmKey { prefix_len, data }
    }

    /// All bits of `data`: the key a lookup passes.
    pub fn host(data: A) -> Self {
        LpmKey {
            prefix_len: (A::SIZE * 8) as u32,
            data,
        }
    }
}

/// `10.0.0.0/8`.
impl<A: fmt::Display> fmt::Display for LpmKey<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.data, self.prefix_len)
    }
}

impl<A: Pod> Pod for LpmKey<A> {
    const SIZE: usize = 4 + A::SIZE;

    fn write(&self, out: &mut [u8]) {
        assert_eq!(out.len(), Self::SIZE, "Pod::write takes SIZE bytes");
        self.prefix_len.write(&mut out[..4]);
        self.data.write(&mut out[4..]);
    }

    fn read(bytes: &[u8]) -> Self {
        assert_eq!(bytes.len(), Self::SIZE, "Pod::read takes SIZE bytes");
        LpmKey {
            prefix_len: u32::read(&bytes[..4]),
            data: A::read(&bytes[4..]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Pod + PartialEq + fmt::Debug>(v: T) {
        let bytes = v.to_bytes();
        assert_eq!(bytes.len(), T::SIZE);
        assert_eq!(T::read(&bytes), v);
    }

    #[test]
    fn integers_are_native_endian() {
        assert_eq!(0x0102_0304u32.to_bytes(), 0x0102_0304u32.to_ne_bytes());
        assert_eq!((-2i16).to_bytes(), (-2i16).to_ne_bytes());
        assert_eq!(u64::SIZE, 8);
        round_trip(u128::MAX - 7);
        round_trip(i8::MIN);
    }

    #[test]
    fn addresses_are_in_network_order() {
        let a = Ipv4Addr::new(192, 0, 2, 1);
        assert_eq!(a.to_bytes(), [192, 0, 2, 1]);
        // What a program compares with a 4-byte load of the packet's
        // address: the octets in memory order, not the host integer.
        assert_eq!(u32::read(&a.to_bytes()), u32::from(a).to_be());
        let b: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let mut want = [0u8; 16];
        want[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        want[15] = 1;
        assert_eq!(b.to_bytes(), want);
        round_trip(a);
        round_trip(b);
    }

    #[test]
    fn lpm_keys_put_the_host_order_length_first() {
        let k = Ipv4Prefix::new(Ipv4Addr::new(10, 0, 0, 0), 8);
        assert_eq!(Ipv4Prefix::SIZE, 8);
        let mut want = 8u32.to_ne_bytes().to_vec();
        want.extend([10, 0, 0, 0]);
        assert_eq!(k.to_bytes(), want);
        round_trip(k);
        assert_eq!(k.to_string(), "10.0.0.0/8");

        let h = Ipv6Prefix::host("2001:db8::5".parse().unwrap());
        assert_eq!(Ipv6Prefix::SIZE, 20);
        assert_eq!(h.prefix_len, 128);
        assert_eq!(&h.to_bytes()[..4], &128u32.to_ne_bytes());
        assert_eq!(h.to_bytes()[4..6], [0x20, 0x01]);
        round_trip(h);
    }

    #[test]
    fn macs_parse_print_and_convert() {
        let m: MacAddr = "02:0A:00:ff:1:00".parse().unwrap();
        assert_eq!(m, MacAddr([2, 10, 0, 0xff, 1, 0]));
        assert_eq!(m.to_string(), "02:0a:00:ff:01:00");
        assert_eq!(m.to_bytes(), [2, 10, 0, 0xff, 1, 0]);
        round_trip(m);
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "020:0:0:0:0:0",
            "x:0:0:0:0:0",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn arrays_are_their_elements_in_order() {
        assert_eq!(<[u16; 3]>::SIZE, 6);
        let want = [1u16.to_ne_bytes(), 2u16.to_ne_bytes(), 3u16.to_ne_bytes()].concat();
        assert_eq!([1u16, 2, 3].to_bytes(), want);
        round_trip([7u32, 8, 9]);
        round_trip([MacAddr::BROADCAST; 2]);
        round_trip([0u8; 0]);
    }
}
