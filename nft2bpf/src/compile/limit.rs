//! `limit`: nft's token bucket (`net/netfilter/nft_limit.c`, Linux
//! 6.18), in a shared array of bucket states guarded by `bpf_spin_lock`.
//!
//! nft keeps tokens in nanoseconds. At init (`nft_limit_init`), with
//! `nsecs = unit * NSEC_PER_SEC` and a packet burst of 5 when none is
//! given, the bucket holds at most `tokens_max = nsecs / rate * burst`
//! (packets) or `nsecs * (rate + burst) / rate` (bytes), and starts full.
//! A packet costs `nsecs / rate` (`nft_limit_pkts_eval`) or
//! `nsecs * len / rate` (`nft_limit_bytes_eval`, `len` being
//! `skb->len`). Under the lock, `nft_limit_eval` refills the bucket with
//! the nanoseconds since the last packet, caps it at `tokens_max`, stamps
//! the time, and takes the cost if `tokens - cost` is not negative (as a
//! signed 64-bit number): the packet is under the rate. Otherwise the
//! tokens stay. `over` inverts the match.
//!
//! The state `{lock, tokens, last}` lives in the `nft_limits` array, one
//! entry per `limit` statement, with BTF for its value type so the kernel
//! accepts the `struct bpf_spin_lock` in it. A bucket starts empty in the
//! map (`last == 0`); its first packet finds it full, as nft's is at
//! load (the time between load and first packet would only have filled
//! it further, up to the same cap).
//!
//! The verifier allows no helper call while a lock is held, so the time
//! is read before locking, and the state's pointer must live in a
//! register across the lock call: the code is a subprogram, whose frame
//! has r6-r9 of its own, called from each `limit` with the bucket's
//! index, the packet's cost and `tokens_max`.

use bpf_builder::asm::Asm;
use bpf_builder::btf::{Btf, Member, Type};
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AluOp, JmpOp, Reg::*, Size};
use bpf_builder::map::MapSpec;

use crate::check::tree::{Limit, LimitUnit};

/// nft's burst when a packet limit gives none
/// (`NFT_LIMIT_PKT_BURST_DEFAULT`).
pub const DEFAULT_PACKET_BURST: u64 = 5;

/// Size of a bucket's state: `struct { bpf_spin_lock lock; u32 pad;
/// u64 tokens; u64 last; }`.
pub const STATE_SIZE: u32 = 24;
/// Offset of the tokens (nanoseconds) in the state.
pub const TOKENS: i16 = 8;
/// Offset of the time of the last packet (`bpf_ktime_get_ns`; 0: none
/// yet) in the state.
pub const LAST: i16 = 16;

/// What one packet costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// A packet limit: this many nanoseconds a packet.
    Packet(u64),
    /// A byte limit: `nsecs * len / rate` nanoseconds (the product
    /// wrapping at 64 bits, as the kernel's does).
    Bytes {
        /// The period in nanoseconds.
        nsecs: u64,
        /// Bytes per period.
        rate: u64,
    },
}

/// A limit's bucket, as `nft_limit_init` sets it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// What a packet costs.
    pub cost: Cost,
    /// The most tokens the bucket holds (and holds at first).
    pub tokens_max: u64,
    /// The match holds over the rate.
    pub over: bool,
}

impl Bucket {
    /// The bucket of `limit`, or why nft refuses it (with the kernel's
    /// errno: `EINVAL` for a zero rate, `EOVERFLOW` for products that do
    /// not fit in 64 bits; a burst must fit nft's 32 bits).
    pub fn new(limit: &Limit) -> Result<Bucket, String> {
        if limit.rate == 0 {
            return Err("a rate of 0 (nft: EINVAL)".into());
        }
        let overflow = || "the limit's numbers overflow 64 bits (nft: EOVERFLOW)".to_string();
        let nsecs = limit
            .per_seconds
            .checked_mul(1_000_000_000)
            .ok_or_else(overflow)?;
        if limit.burst > u64::from(u32::MAX) {
            return Err(format!("burst {} does not fit in 32 bits", limit.burst));
        }
        let packets = limit.unit == LimitUnit::Packets;
        let burst = match limit.burst {
            0 if packets => DEFAULT_PACKET_BURST,
            b => b,
        };
        let rate_with_burst = limit.rate.checked_add(burst).ok_or_else(overflow)?;
        let (cost, tokens_max) = if packets {
            let cost = nsecs / limit.rate;
            (
                Cost::Packet(cost),
                cost.checked_mul(burst).ok_or_else(overflow)?,
            )
        } else {
            let tokens = nsecs.checked_mul(rate_with_burst).ok_or_else(overflow)? / limit.rate;
            let cost = Cost::Bytes {
                nsecs,
                rate: limit.rate,
            };
            (cost, tokens)
        };
        Ok(Bucket {
            cost,
            tokens_max,
            over: limit.over,
        })
    }
}

/// The limits map, named `name`, with `entries` buckets: a shared array
/// of states, described in BTF (the kernel needs it to find the lock).
pub fn map(name: &str, entries: u32) -> MapSpec {
    let mut btf = Btf::new();
    let u32_t = btf.add(Type::int("u32", 4, false));
    let lock = btf.add(Type::Struct {
        name: "bpf_spin_lock".into(),
        size: 4,
        members: vec![Member::new("val", u32_t, 0)],
    });
    let u64_t = btf.add(Type::int("u64", 8, false));
    let state = btf.add(Type::Struct {
        name: "nft_limit_state".into(),
        size: STATE_SIZE,
        members: vec![
            Member::new("lock", lock, 0),
            Member::new("tokens", u64_t, 8 * TOKENS as u32),
            Member::new("last", u64_t, 8 * LAST as u32),
        ],
    });
    MapSpec::array(name, STATE_SIZE, entries).with_btf(btf, u32_t, state)
}

/// The subprogram `take(index, cost, tokens_max)` over the limits map
/// `limits`: returns 1 when bucket `index` had the tokens (the packet is
/// under the rate, and pays), 0 otherwise.
pub fn take_function(limits: bpf_builder::object::MapId) -> Asm {
    let mut a = Asm::new();
    let missing = a.new_label();
    let capped = a.new_label();
    let short = a.new_label();
    // Arguments: r1 the index, r2 the cost, r3 tokens_max.
    a.mov64(R6, R2);
    a.mov64(R7, R3);
    a.stx(Size::W, R10, -4, R1);
    a.call(Helper::KtimeGetNs);
    a.mov64(R8, R0);
    a.ld_map_fd(R1, limits);
    a.mov64(R2, R10);
    a.add64(R2, -4);
    a.call(Helper::MapLookupElem);
    // Every index of an array exists: never taken.
    a.jmp(JmpOp::Eq, R0, 0, missing);
    a.mov64(R9, R0);
    a.mov64(R1, R9);
    a.call(Helper::SpinLock);
    // tokens = min(tokens + now - last, tokens_max); full at first.
    a.mov64(R2, R7);
    a.ldx(Size::DW, R1, R9, LAST);
    a.jmp(JmpOp::Eq, R1, 0, capped);
    a.ldx(Size::DW, R2, R9, TOKENS);
    a.add64(R2, R8);
    a.alu64(AluOp::Sub, R2, R1);
    a.jmp(JmpOp::Le, R2, R7, capped);
    a.mov64(R2, R7);
    a.bind(capped);
    a.stx(Size::DW, R9, LAST, R8);
    // delta = tokens - cost: taken when not negative.
    a.mov64(R3, R2);
    a.alu64(AluOp::Sub, R3, R6);
    a.mov64(R6, 0);
    a.jmp(JmpOp::SLt, R3, 0, short);
    a.mov64(R2, R3);
    a.mov64(R6, 1);
    a.bind(short);
    a.stx(Size::DW, R9, TOKENS, R2);
    a.mov64(R1, R9);
    a.call(Helper::SpinUnlock);
    a.mov64(R0, R6);
    a.exit();
    a.bind(missing);
    a.mov64(R0, 0);
    a.exit();
    a
}

/// Emits the call of `take` for `bucket` number `index`, leaving 1 in r0
/// when the packet is under the rate; the packet's length (for a byte
/// limit) is the `u32` at stack offset `len_slot`. Clobbers r0-r5.
pub fn emit_take(
    a: &mut Asm,
    take: bpf_builder::object::FuncId,
    index: u32,
    bucket: &Bucket,
    len_slot: i16,
) {
    a.mov64(R1, index as i32);
    match bucket.cost {
        Cost::Packet(cost) => a.ld_imm64(R2, cost),
        Cost::Bytes { nsecs, rate } => {
            a.ld_imm64(R2, nsecs);
            a.ldx(Size::W, R3, R10, len_slot);
            a.alu64(AluOp::Mul, R2, R3);
            a.ld_imm64(R3, rate);
            a.alu64(AluOp::Div, R2, R3);
        }
    }
    a.ld_imm64(R3, bucket.tokens_max);
    a.call_func(take);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(unit: LimitUnit, rate: u64, per_seconds: u64, burst: u64) -> Limit {
        Limit {
            over: false,
            unit,
            rate,
            per_seconds,
            burst,
        }
    }

    #[test]
    fn buckets_are_nfts() {
        // `limit rate 1/hour`: 5 packets of 3600 s each.
        let b = Bucket::new(&limit(LimitUnit::Packets, 1, 3600, 0)).unwrap();
        assert_eq!(b.cost, Cost::Packet(3_600_000_000_000));
        assert_eq!(b.tokens_max, 5 * 3_600_000_000_000);
        // `limit rate 3/second burst 2 packets`: integer division first.
        let b = Bucket::new(&limit(LimitUnit::Packets, 3, 1, 2)).unwrap();
        assert_eq!(b.cost, Cost::Packet(333_333_333));
        assert_eq!(b.tokens_max, 666_666_666);
        // `limit rate 1000 bytes/minute burst 500 bytes`.
        let b = Bucket::new(&limit(LimitUnit::Bytes, 1000, 60, 500)).unwrap();
        assert_eq!(b.tokens_max, 60_000_000_000 * 1500 / 1000);
        assert!(Bucket::new(&limit(LimitUnit::Bytes, 0, 1, 0)).is_err());
        assert!(Bucket::new(&limit(LimitUnit::Bytes, u64::MAX, 1, 1)).is_err());
    }
}
