//! Sets whose elements change on their own: `add @set { KEY [limit ...]
//! }` and `update @set { KEY }` from the packet path (nft's `dynset`
//! expression, `net/netfilter/nft_dynset.c`), element timeouts, and a
//! token bucket per element (per-source meters).
//!
//! Such a set's map is a `BPF_MAP_TYPE_HASH` of at most `size` entries
//! (the kernel's dynamic sets default to 65535, as `nft_dynset_init`
//! sets a size of 0 to `0xffff`), and each entry's value is an
//! [`ElemValue`]: the `u32` a plain set holds, then the element's expiry
//! and its limit's bucket under a `bpf_spin_lock`.
//!
//! What the kernel does, and what the code here does:
//!
//! * `nft_dynset_eval` calls the set's `update`: the element of the key
//!   is found (an expired element counts as absent, as the hash set's
//!   lookup skips it), or made by `nft_dynset_new`, which takes a place
//!   only while the set holds fewer than `size` elements
//!   (`atomic_add_unless(&set->nelems, 1, set->size)`). A full set adds
//!   nothing and the statement breaks the rule: nft never evicts. So the
//!   map is a plain hash map with `size` entries, whose insert fails
//!   when it is full (`E2BIG`), and the rule ends; no LRU map, which
//!   would evict where nft refuses.
//! * A new element takes the timeout `priv->timeout ? : set->timeout`
//!   (none: it never expires) and a clone of the statement's limit:
//!   `nft_limit_clone` starts the bucket full (`tokens = tokens_max`,
//!   `last = now`).
//! * `update` on an element found with a timeout restarts it: the
//!   expiry becomes `now + (priv->timeout ? : set->timeout)`. `add`
//!   leaves it.
//! * Then `nft_set_elem_update_expr` runs the *element's* expressions:
//!   its own limit, the one it was made with (not the statement's: two
//!   statements with different limits on one set use the limit of the
//!   statement that made the element; an element added from user space
//!   has none, and always passes). The bucket arithmetic is
//!   `nft_limit_eval`'s ([`super::limit`]); the statement holds when the
//!   limit does not break (`limit rate over` inverted).
//! * An element expires when `now >= expiration` (`nft_set_elem_expired`).
//!   nft keeps time in jiffies; the program reads `bpf_ktime_get_ns`
//!   (and user space `CLOCK_MONOTONIC`, the same clock), a finer grain
//!   of the same time.
//!
//! Where nft2bpf differs: nft counts an expired element against the
//! size until its garbage collection frees it (every `gc-interval`);
//! the map keeps an expired element until the same key is added again
//! (which reuses its entry) or user space deletes it, so a set full of
//! expired elements of *other* keys takes no new key. Each program (hook
//! and device) has its own copy of the set, as for every set.

use bpf_builder::asm::{Asm, Label};
use bpf_builder::btf::{Btf, Member, Type};
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AluOp, JmpOp, Reg::*, Size};
use bpf_builder::map::MapSpec;
use bpf_builder::object::FuncId;
use pktmatch::codegen::{CALLER_SLOT, KEY_SLOT};

use super::actions::SetMapRef;
use super::limit::{Bucket, Cost};

/// Offset of the `u32` a plain set's value is (1 in a set).
pub const VALUE: i16 = 0;
/// Offset of the `bpf_spin_lock` that guards the bucket.
pub const LOCK: i16 = 4;
/// Offset of the expiry (`bpf_ktime_get_ns` nanoseconds; 0: never).
pub const EXPIRES: i16 = 8;
/// Offset of the bucket's tokens (nanoseconds).
pub const TOKENS: i16 = 16;
/// Offset of the time of the bucket's last packet.
pub const LAST: i16 = 24;
/// Offset of the cost of a packet (packet limit), or the period in
/// nanoseconds (byte limit: a packet costs `period * len / rate`).
pub const COST: i16 = 32;
/// Offset of the bytes per period of a byte limit (0: a packet limit).
pub const RATE: i16 = 40;
/// Offset of the most tokens the bucket holds.
pub const TOKENS_MAX: i16 = 48;
/// Offset of the flags (`u32`): [`LIMITED`], [`OVER`].
pub const FLAGS: i16 = 56;
/// Size of an [`ElemValue`].
pub const VALUE_SIZE: u32 = 64;

/// The element has a limit.
pub const LIMITED: u32 = 1;
/// Its limit is `limit rate over` (holds over the rate).
pub const OVER: u32 = 2;

/// Where the dynset code builds a new element's value: below the
/// lookup key pktmatch writes (the stack below it is the front end's).
pub const NEW_VALUE_SLOT: i16 = KEY_SLOT - VALUE_SIZE as i16;

/// The element limit subprogram's name.
pub const ELEM_LIMIT_FUNCTION: &str = "nft_elem_limit";

/// The value of an element of a stateful set, as its map holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ElemValue {
    /// The `u32` of a plain set's value (1).
    pub value: u32,
    /// When it expires (`CLOCK_MONOTONIC` nanoseconds); 0: never.
    pub expires: u64,
    /// Its limit, if it was made with one.
    pub bucket: Option<Bucket>,
    /// The bucket's tokens.
    pub tokens: u64,
    /// When the bucket last took a packet.
    pub last: u64,
}

impl ElemValue {
    /// An element of a set (value 1) without a limit, expiring
    /// `timeout_ms` after `now` (nanoseconds; no timeout: never).
    pub fn new(now: u64, timeout_ms: Option<u64>) -> ElemValue {
        ElemValue {
            value: 1,
            expires: expiry(now, timeout_ms),
            ..ElemValue::default()
        }
    }

    /// The map value's bytes (the lock's zero).
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; VALUE_SIZE as usize];
        let mut put = |at: i16, v: u64| {
            out[at as usize..at as usize + 8].copy_from_slice(&v.to_ne_bytes());
        };
        put(EXPIRES, self.expires);
        put(TOKENS, self.tokens);
        put(LAST, self.last);
        let mut flags = 0;
        if let Some(b) = self.bucket {
            let (cost, rate) = match b.cost {
                Cost::Packet(c) => (c, 0),
                Cost::Bytes { nsecs, rate } => (nsecs, rate),
            };
            put(COST, cost);
            put(RATE, rate);
            put(TOKENS_MAX, b.tokens_max);
            flags = LIMITED | if b.over { OVER } else { 0 };
        }
        out[..4].copy_from_slice(&self.value.to_ne_bytes());
        out[FLAGS as usize..FLAGS as usize + 4].copy_from_slice(&flags.to_ne_bytes());
        out
    }

    /// The value its bytes hold; `None` when they are too short.
    pub fn parse(b: &[u8]) -> Option<ElemValue> {
        let u64_at = |at: i16| -> Option<u64> {
            Some(u64::from_ne_bytes(
                b.get(at as usize..at as usize + 8)?.try_into().ok()?,
            ))
        };
        let u32_at = |at: i16| -> Option<u32> {
            Some(u32::from_ne_bytes(
                b.get(at as usize..at as usize + 4)?.try_into().ok()?,
            ))
        };
        let flags = u32_at(FLAGS)?;
        let bucket = (flags & LIMITED != 0)
            .then(|| -> Option<Bucket> {
                let (cost, rate) = (u64_at(COST)?, u64_at(RATE)?);
                Some(Bucket {
                    cost: if rate == 0 {
                        Cost::Packet(cost)
                    } else {
                        Cost::Bytes { nsecs: cost, rate }
                    },
                    tokens_max: u64_at(TOKENS_MAX)?,
                    over: flags & OVER != 0,
                })
            })
            .flatten();
        Some(ElemValue {
            value: u32_at(VALUE)?,
            expires: u64_at(EXPIRES)?,
            bucket,
            tokens: u64_at(TOKENS)?,
            last: u64_at(LAST)?,
        })
    }

    /// Whether it has expired at `now`: `now >= expiration`, as
    /// `nft_set_elem_expired`.
    pub fn expired(&self, now: u64) -> bool {
        self.expires != 0 && now >= self.expires
    }
}

/// The expiry of a timeout of `timeout_ms` from `now` (0: none).
pub fn expiry(now: u64, timeout_ms: Option<u64>) -> u64 {
    match timeout_ms {
        Some(t) if t > 0 => now.saturating_add(t.saturating_mul(1_000_000)),
        _ => 0,
    }
}

/// A stateful set's map, named `name`: a hash map of `key_bytes` keys
/// and [`ElemValue`]s, with BTF for the value (the kernel needs it to
/// find the lock).
pub fn map(name: &str, key_bytes: u32, max_entries: u32) -> MapSpec {
    let mut btf = Btf::new();
    let u8_t = btf.add(Type::int("u8", 1, false));
    let u32_t = btf.add(Type::int("u32", 4, false));
    let key = btf.add(Type::Array {
        elem: u8_t,
        index: u32_t,
        len: key_bytes,
    });
    let lock = btf.add(Type::Struct {
        name: "bpf_spin_lock".into(),
        size: 4,
        members: vec![Member::new("val", u32_t, 0)],
    });
    let u64_t = btf.add(Type::int("u64", 8, false));
    let field = |name: &str, ty, at: i16| Member::new(name, ty, 8 * at as u32);
    let value = btf.add(Type::Struct {
        name: "nft_elem".into(),
        size: VALUE_SIZE,
        members: vec![
            field("value", u32_t, VALUE),
            field("lock", lock, LOCK),
            field("expires", u64_t, EXPIRES),
            field("tokens", u64_t, TOKENS),
            field("last", u64_t, LAST),
            field("cost", u64_t, COST),
            field("rate", u64_t, RATE),
            field("tokens_max", u64_t, TOKENS_MAX),
            field("flags", u32_t, FLAGS),
        ],
    });
    MapSpec::hash(name, key_bytes, VALUE_SIZE, max_entries).with_btf(btf, key, value)
}

/// The subprogram `elem_limit(value, len)`: runs the limit of the
/// element whose [`ElemValue`] `value` points at, for a packet of `len`
/// bytes (nft's `skb->len`); returns 1 when the statement holds (no
/// limit; under the rate; `over` and over it), 0 when it breaks.
pub fn elem_limit_function() -> Asm {
    let mut a = Asm::new();
    let packets = a.new_label();
    let later = a.new_label();
    let capped = a.new_label();
    let short = a.new_label();
    let no_limit = a.new_label();
    a.ldx(Size::W, R3, R1, FLAGS);
    a.jmp(JmpOp::Set, R3, LIMITED as i32, packets);
    a.ja(no_limit);
    a.bind(packets);
    a.mov64(R6, R1);
    // The cost: `cost`, or `nsecs * len / rate` (wrapping, as the
    // kernel's product does).
    a.ldx(Size::DW, R7, R6, COST);
    a.ldx(Size::DW, R3, R6, RATE);
    let cost_known = a.new_label();
    a.jmp(JmpOp::Eq, R3, 0, cost_known);
    a.alu64(AluOp::Mul, R7, R2);
    a.alu64(AluOp::Div, R7, R3);
    a.bind(cost_known);
    a.call(Helper::KtimeGetNs);
    a.mov64(R8, R0);
    a.mov64(R1, R6);
    a.add64(R1, i32::from(LOCK));
    a.call(Helper::SpinLock);
    // tokens = min(tokens + now - last, tokens_max); a `now` read before
    // another CPU's stamp counts as that stamp.
    a.ldx(Size::DW, R1, R6, LAST);
    a.jmp(JmpOp::Ge, R8, R1, later);
    a.mov64(R8, R1);
    a.bind(later);
    a.ldx(Size::DW, R2, R6, TOKENS);
    a.add64(R2, R8);
    a.alu64(AluOp::Sub, R2, R1);
    a.ldx(Size::DW, R3, R6, TOKENS_MAX);
    a.jmp(JmpOp::Le, R2, R3, capped);
    a.mov64(R2, R3);
    a.bind(capped);
    a.stx(Size::DW, R6, LAST, R8);
    // delta = tokens - cost: taken when not negative.
    a.mov64(R3, R2);
    a.alu64(AluOp::Sub, R3, R7);
    a.mov64(R9, 0);
    a.jmp(JmpOp::SLt, R3, 0, short);
    a.mov64(R2, R3);
    a.mov64(R9, 1);
    a.bind(short);
    a.stx(Size::DW, R6, TOKENS, R2);
    a.mov64(R1, R6);
    a.add64(R1, i32::from(LOCK));
    a.call(Helper::SpinUnlock);
    // Holds: under the rate, or (`over`) not.
    a.ldx(Size::W, R0, R6, FLAGS);
    a.alu64(AluOp::Rsh, R0, 1);
    a.alu64(AluOp::And, R0, 1);
    a.alu64(AluOp::Xor, R0, R9);
    a.exit();
    a.bind(no_limit);
    a.mov64(R0, 1);
    a.exit();
    a
}

/// A dynset statement's code, as an action: its key is at pktmatch's
/// `KEY_SLOT`.
#[derive(Debug, Clone, Copy)]
pub struct DynSetCode {
    /// The set's map.
    pub set: SetMapRef,
    /// `update`: a found element's timeout restarts.
    pub update: bool,
    /// The timeout of new elements (and of refreshed ones), in
    /// milliseconds: 0 for none.
    pub timeout_ms: u64,
    /// The bucket new elements get.
    pub bucket: Option<Bucket>,
    /// The element limit subprogram, when some element may have a limit.
    pub elem_limit: Option<FuncId>,
    /// The stack slot of the packet's length (`u32`).
    pub len_slot: i16,
}

/// Emits a lookup in the stateful set map `map` of the key at
/// `KEY_SLOT` that jumps to `fail` on a miss or an expired element;
/// with `elem_limit`, runs the element's limit on a hit and jumps to
/// `fail` when it breaks (`nft_lookup_eval` runs the element's
/// expressions: a lookup of a metered set takes tokens too). Clobbers
/// r0-r5 and `CALLER_SLOT`.
pub fn emit_lookup(
    a: &mut Asm,
    set: SetMapRef,
    fail: Label,
    elem_limit: Option<FuncId>,
    len_slot: i16,
) {
    a.call(Helper::KtimeGetNs);
    a.stx(Size::DW, R10, CALLER_SLOT, R0);
    super::actions::lookup_set_key(a, set, KEY_SLOT, fail);
    let live = a.new_label();
    a.ldx(Size::DW, R1, R0, EXPIRES);
    a.jmp(JmpOp::Eq, R1, 0, live);
    a.ldx(Size::DW, R2, R10, CALLER_SLOT);
    a.jmp(JmpOp::Ge, R2, R1, fail);
    a.bind(live);
    if let Some(f) = elem_limit {
        a.mov64(R1, R0);
        a.ldx(Size::W, R2, R10, len_slot);
        a.call_func(f);
        a.jmp(JmpOp::Eq, R0, 0, fail);
    }
}

impl DynSetCode {
    /// Emits the statement: falls through when it holds, jumps to `fail`
    /// when it breaks (the set is full, the element's limit breaks).
    /// Clobbers r0-r5, `CALLER_SLOT` and the new value's slot.
    pub fn emit(&self, a: &mut Asm, fail: Label) {
        let new = a.new_label();
        let run = a.new_label();
        let timeout_ns = self.timeout_ms.saturating_mul(1_000_000);
        a.call(Helper::KtimeGetNs);
        a.stx(Size::DW, R10, CALLER_SLOT, R0);
        // An array of maps holding no map: the set is full.
        self.set.load_r1(a, fail);
        a.mov64(R2, R10);
        a.add64(R2, i32::from(KEY_SLOT));
        a.call(Helper::MapLookupElem);
        a.jmp(JmpOp::Eq, R0, 0, new);
        // Found: expired counts as absent; one without a timeout runs.
        a.ldx(Size::DW, R1, R0, EXPIRES);
        a.jmp(JmpOp::Eq, R1, 0, run);
        a.ldx(Size::DW, R2, R10, CALLER_SLOT);
        a.jmp(JmpOp::Ge, R2, R1, new);
        if self.update {
            a.ld_imm64(R1, timeout_ns);
            a.add64(R1, R2);
            a.stx(Size::DW, R0, EXPIRES, R1);
        }
        a.ja(run);
        // Made: the value on the stack, then into the map (an expired
        // element's entry is reused); a full map refuses it.
        a.bind(new);
        let v = NEW_VALUE_SLOT;
        a.st(Size::DW, R10, v + VALUE, 1);
        a.ldx(Size::DW, R2, R10, CALLER_SLOT);
        if timeout_ns > 0 {
            a.ld_imm64(R1, timeout_ns);
            a.add64(R1, R2);
            a.stx(Size::DW, R10, v + EXPIRES, R1);
        } else {
            a.st(Size::DW, R10, v + EXPIRES, 0);
        }
        a.stx(Size::DW, R10, v + LAST, R2);
        let (cost, rate, tokens_max, flags) = match self.bucket {
            Some(b) => {
                let (cost, rate) = match b.cost {
                    Cost::Packet(c) => (c, 0),
                    Cost::Bytes { nsecs, rate } => (nsecs, rate),
                };
                let flags = LIMITED | if b.over { OVER } else { 0 };
                (cost, rate, b.tokens_max, flags)
            }
            None => (0, 0, 0, 0),
        };
        for (at, x) in [
            (TOKENS, tokens_max),
            (COST, cost),
            (RATE, rate),
            (TOKENS_MAX, tokens_max),
        ] {
            a.ld_imm64(R1, x);
            a.stx(Size::DW, R10, v + at, R1);
        }
        a.st(Size::DW, R10, v + FLAGS, flags as i32);
        self.set.load_r1(a, fail);
        a.mov64(R2, R10);
        a.add64(R2, i32::from(KEY_SLOT));
        a.mov64(R3, R10);
        a.add64(R3, i32::from(v));
        a.mov64(R4, 0);
        a.call(Helper::MapUpdateElem);
        a.jmp(JmpOp::Ne, R0, 0, fail);
        self.set.load_r1(a, fail);
        a.mov64(R2, R10);
        a.add64(R2, i32::from(KEY_SLOT));
        a.call(Helper::MapLookupElem);
        a.jmp(JmpOp::Eq, R0, 0, fail);
        a.bind(run);
        if let Some(f) = self.elem_limit {
            a.mov64(R1, R0);
            a.ldx(Size::W, R2, R10, self.len_slot);
            a.call_func(f);
            a.jmp(JmpOp::Eq, R0, 0, fail);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back() {
        let v = ElemValue {
            value: 1,
            expires: 123,
            bucket: Some(Bucket {
                cost: Cost::Bytes {
                    nsecs: 1_000_000_000,
                    rate: 1024,
                },
                tokens_max: 77,
                over: true,
            }),
            tokens: 5,
            last: 9,
        };
        assert_eq!(ElemValue::parse(&v.bytes()), Some(v));
        let plain = ElemValue::new(1_000, Some(2));
        assert_eq!(plain.expires, 2_001_000);
        assert!(!plain.expired(2_000_999) && plain.expired(2_001_000));
        assert_eq!(ElemValue::new(5, None).expires, 0);
        assert_eq!(ElemValue::parse(&plain.bytes()), Some(plain));
    }
}
