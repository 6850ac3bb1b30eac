//! Matches: what a key reads (32-bit words of packet bytes, variables
//! of the prologue, or a constant the compiler knows) and the tests on
//! it, as a formula of blocks.
//!
//! A field of `len` bytes at `offset` from its header, `bits` wide and
//! `shift` bits from the end of those bytes (nft's payload load, mask
//! and shift), is compared as the bytes read, masked, against the
//! constant shifted into place: the order of unsigned numbers is the
//! same, and no shift runs. Wider than 32 bits (MAC and IPv6
//! addresses), the bytes split into words, most significant first, and
//! comparisons go word by word.
//!
//! nft breaks the rule when a load does not fit, whatever the test
//! (`ip saddr != 10.0.0.1` does not match a frame too short for it). A
//! test of one block takes its short read to the rule's failure; a test
//! of several first reads every word it needs in guard blocks whose
//! short read fails the rule, and its own blocks then always fit.

use pktmatch::Span;
use pktmatch::ir::{BinOp, CmpOp, Cond, Edge, Meta, Val, ValNode};

use super::Lower;
use super::cfg::Short;
use super::pktinfo::var;
use crate::check::fields::{Base, Load, MetaKey};
use crate::check::tree::{CmpOp as NftOp, ElemKey, Key, Selector, Set, Source, Test};
use crate::compile::Attach;
use crate::error::Error;

/// A boolean formula of tests.
#[derive(Debug, Clone)]
pub(super) enum F {
    /// Known at compile time.
    Const(bool),
    /// One test.
    Test(Cond),
    /// The test, negated.
    Not(Box<F>),
    /// All of them, in order.
    And(Vec<F>),
    /// Any of them, in order.
    Or(Vec<F>),
}

impl F {
    fn not(self) -> F {
        match self {
            F::Const(b) => F::Const(!b),
            F::Not(f) => *f,
            f => F::Not(Box::new(f)),
        }
    }

    fn and(parts: Vec<F>) -> F {
        F::join(parts, true)
    }

    fn or(parts: Vec<F>) -> F {
        F::join(parts, false)
    }

    /// All of `parts` (`all`: and) or any of them (or): nested ones of
    /// the same kind flattened, constants folded.
    fn join(parts: Vec<F>, all: bool) -> F {
        let mut out = Vec::with_capacity(parts.len());
        for p in parts {
            match p {
                // The unit of the operation, and its absorbing value.
                F::Const(b) if b == all => {}
                F::Const(b) => return F::Const(b),
                F::And(inner) if all => out.extend(inner),
                F::Or(inner) if !all => out.extend(inner),
                p => out.push(p),
            }
        }
        match out.len() {
            0 => F::Const(all),
            1 => out.pop().expect("one"),
            _ if all => F::And(out),
            _ => F::Or(out),
        }
    }

    /// The number of blocks it becomes.
    fn blocks(&self) -> usize {
        match self {
            F::Const(_) => 0,
            F::Test(_) => 1,
            F::Not(f) => f.blocks(),
            F::And(fs) | F::Or(fs) => fs.iter().map(F::blocks).sum(),
        }
    }
}

/// What one part of a key reads.
#[derive(Debug, Clone)]
pub(super) enum Part {
    /// Words of the packet or of the prologue's variables, most
    /// significant first, each with the width it has in the value and
    /// the mask applied to it; `shift` places constants.
    Words {
        /// The words, masked.
        words: Vec<Val>,
        /// Bits in each word of the value, most significant first.
        widths: Vec<u32>,
        /// Where the field's lowest bit is in the last word.
        shift: u32,
        /// The field's width in bits.
        bits: u32,
        /// Tests that must hold before the words are read (the
        /// transport header exists); they read no packet byte.
        pre: Vec<Cond>,
        /// Values whose loads, when they fit, make every word fit.
        guards: Vec<Val>,
    },
    /// A value the compiler knows (a device name, the device type).
    Known(u128),
}

impl Lower<'_> {
    /// `m`'s blocks: `t` when it holds, `fail` when not (or when a load
    /// does not fit).
    pub(super) fn match_blocks(
        &mut self,
        key: &Key,
        test: &Test,
        span: Span,
        t: Edge,
        fail: Edge,
    ) -> Result<Edge, Error> {
        if let Test::Prefix {
            value,
            len,
            negated,
        } = *test
        {
            let (key, test) = prefix_as_cmp(key, value, len, negated);
            return self.match_blocks(&key, &test, span, t, fail);
        }
        let parts = self.key_parts(key, span)?;
        if let Test::InSet { set, negated } = *test
            && let Some(lookup) = self.set_lookup(&parts, set, negated, span)?
        {
            // One block: a miss, or a key that does not fit, is false.
            let cond = Cond::Lookup {
                key: lookup.key,
                action: lookup.action,
                result: None.into(),
            };
            let block = if negated {
                self.cfg.test(cond, fail, t, Short::True, span)
            } else {
                self.cfg.test(cond, t, fail, Short::False, span)
            };
            return Ok(self.prerequisites(&parts, block, fail, span));
        }
        let f = self.test_formula(&parts, test);
        Ok(self.guarded(&parts, f, t, fail, fail, span))
    }

    /// Blocks for `f` over `parts`: `t` when it holds, `f_edge` when not,
    /// `fail` when a load does not fit or a part cannot be read.
    pub(super) fn guarded(
        &mut self,
        parts: &[Part],
        f: F,
        t: Edge,
        f_edge: Edge,
        fail: Edge,
        span: Span,
    ) -> Edge {
        if f.blocks() == 1 && f_edge == fail {
            // One block: its short read goes where a failure goes.
            let (cond, negated) = match &f {
                F::Test(c) => (*c, false),
                F::Not(inner) => match **inner {
                    F::Test(c) => (c, true),
                    _ => unreachable!("one block"),
                },
                _ => unreachable!("one block"),
            };
            let (bt, bf, short) = if negated {
                (f_edge, t, Short::True)
            } else {
                (t, f_edge, Short::False)
            };
            let body = self.cfg.test(cond, bt, bf, short, span);
            return self.prerequisites(parts, body, fail, span);
        }
        let body = self.emit(&f, t, f_edge, span);
        self.guard(parts, body, fail, span)
    }

    /// Before `body`: the prerequisites of `parts`, then guard blocks
    /// that read every word of them (a load that does not fit goes to
    /// `fail`), so that `body`'s own loads always fit.
    pub(super) fn guard(&mut self, parts: &[Part], body: Edge, fail: Edge, span: Span) -> Edge {
        let mut e = body;
        let guards: Vec<Val> = parts.iter().flat_map(guards_of).collect();
        for &g in guards.iter().rev() {
            // Always true when it fits: the guard is its loads.
            let cond = self.cmp_cond(g, CmpOp::Ge, 0);
            e = self.cfg.test(cond, e, fail, Short::False, span);
        }
        self.prerequisites(parts, e, fail, span)
    }

    /// Before `body`: the tests that must hold before `parts` are read.
    pub(super) fn prerequisites(
        &mut self,
        parts: &[Part],
        body: Edge,
        fail: Edge,
        span: Span,
    ) -> Edge {
        let pre: Vec<Cond> = parts.iter().flat_map(pre_of).collect();
        pre.iter()
            .rev()
            .fold(body, |e, &c| self.cfg.test(c, e, fail, Short::False, span))
    }

    /// Blocks for `f`, built backwards; none of them reads past the
    /// packet (the guards came first).
    pub(super) fn emit(&mut self, f: &F, t: Edge, e: Edge, span: Span) -> Edge {
        match f {
            F::Const(true) => t,
            F::Const(false) => e,
            F::Test(c) => self.cfg.test(*c, t, e, Short::False, span),
            F::Not(inner) => self.emit(inner, e, t, span),
            F::And(fs) => fs
                .iter()
                .rev()
                .fold(t, |next, f| self.emit(f, next, e, span)),
            F::Or(fs) => fs
                .iter()
                .rev()
                .fold(e, |next, f| self.emit(f, t, next, span)),
        }
    }

    /// What each part of the key reads.
    pub(super) fn key_parts(&mut self, key: &Key, span: Span) -> Result<Vec<Part>, Error> {
        key.parts.iter().map(|s| self.part(s, span)).collect()
    }

    fn part(&mut self, s: &Selector, span: Span) -> Result<Part, Error> {
        let bits = s.bits();
        let mut part = match s.source {
            Source::Field(f) => self.payload(f.load(), span)?,
            Source::Raw(l) => self.payload(l, span)?,
            Source::Meta(m) => self.meta(m),
        };
        let field_mask = ones(bits);
        let mask = s.mask.map_or(field_mask, |m| m & field_mask);
        if let Part::Words {
            words,
            widths,
            shift,
            ..
        } = &mut part
        {
            let masks = split_words(mask << *shift, widths);
            for (w, (m, width)) in words.iter_mut().zip(masks.into_iter().zip(widths.iter())) {
                if m != ones32(*width) {
                    let mk = self.k(m);
                    *w = self.bin(BinOp::And, *w, mk);
                }
            }
        } else if let Part::Known(v) = &mut part {
            *v &= mask;
        }
        Ok(part)
    }

    /// A metadata key.
    fn meta(&mut self, m: MetaKey) -> Part {
        let ingress = self.hook != Attach::TcxEgress;
        let word = |v: Val, bits: u32, pre: Vec<Cond>| Part::Words {
            words: vec![v],
            widths: vec![bits],
            shift: 0,
            bits,
            pre,
            guards: Vec::new(),
        };
        match m {
            MetaKey::L4Proto => {
                let v = self.var(var::L4PROTO);
                let pre = vec![self.l4_present()];
                word(v, 8, pre)
            }
            MetaKey::Protocol => {
                let v = self.var(var::PROTO);
                word(v, 16, Vec::new())
            }
            MetaKey::Length => {
                let v = self.var(var::LEN);
                word(v, 32, Vec::new())
            }
            MetaKey::PktType => {
                let v = match self.hook {
                    Attach::Xdp => self.var(var::PKTTYPE),
                    _ => self.ir.val(ValNode::Meta(Meta::PktType)),
                };
                word(v, 8, Vec::new())
            }
            MetaKey::IifName if ingress => Part::Known(name_value(&self.device.name)),
            MetaKey::OifName if !ingress => Part::Known(name_value(&self.device.name)),
            MetaKey::IifName | MetaKey::OifName => Part::Known(0),
            // Ethernet devices only (ARPHRD_ETHER). At egress too: nft's
            // link-layer matches hold there (measured on nft 1.0.6, Linux
            // 6.18: tests/traffic.rs, egress).
            MetaKey::IifType => Part::Known(1),
        }
    }

    /// `var L4 == 1`: the kernel found a transport header.
    fn l4_present(&mut self) -> Cond {
        let a = self.var(var::L4);
        self.cmp_cond(a, CmpOp::Eq, 1)
    }

    /// Packet bytes.
    fn payload(&mut self, l: Load, span: Span) -> Result<Part, Error> {
        if l.len == 0 || l.len > 16 || (l.len > 4 && l.shift != 0) {
            return Err(Error::new(
                format!(
                    "a load of {} bytes, {} bits from their end, is more than nft2bpf compiles",
                    l.len, l.shift
                ),
                span,
            ));
        }
        let widths = chunks(l.len);
        let mut pre = Vec::new();
        let mut at = l.offset;
        let mut words = Vec::with_capacity(widths.len());
        let mut guards = Vec::new();
        match l.base {
            Base::Link if self.hook != Attach::Xdp => {
                for &w in &widths {
                    let v = self.ll_rebuilt(at, w / 8);
                    words.push(v);
                    guards.push(v);
                    at += w / 8;
                }
            }
            base => {
                let from = match base {
                    Base::Link => None,
                    Base::Network => Some(self.var(var::NH)),
                    Base::Transport => {
                        pre.push(self.l4_present());
                        // The kernel's fast path (1, 2 or 4 bytes at an
                        // offset aligned to their size) does not look at
                        // the fragment offset; the slow path fails on a
                        // later fragment.
                        let fast = matches!(l.len, 1 | 2 | 4) && l.offset.is_multiple_of(l.len);
                        if !fast {
                            let a = self.var(var::FRAGOFF);
                            pre.push(self.cmp_cond(a, CmpOp::Eq, 0));
                        }
                        Some(self.var(var::THOFF))
                    }
                };
                for &w in &widths {
                    words.push(self.bytes(from, at, w / 8));
                    at += w / 8;
                }
                // The last byte fits: they all do.
                if widths.len() > 1 {
                    guards.push(self.ir.load(from, l.offset + l.len - 1, 1));
                } else {
                    guards.push(words[0]);
                }
            }
        }
        Ok(Part::Words {
            words,
            widths,
            shift: l.shift,
            bits: l.bits,
            pre,
            guards,
        })
    }

    /// 1 to 4 bytes at `from + k`, big-endian.
    pub(super) fn bytes(&mut self, from: Option<Val>, k: u32, n: u32) -> Val {
        match n {
            1 | 2 | 4 => self.ir.load(from, k, n as u8),
            3 => {
                let hi = self.ir.load(from, k, 2);
                let lo = self.ir.load(from, k + 2, 1);
                let eight = self.k(8);
                let hi = self.bin(BinOp::Shl, hi, eight);
                self.bin(BinOp::Or, hi, lo)
            }
            _ => unreachable!("words are 1 to 4 bytes"),
        }
    }

    /// `n` bytes at `k` of the link layer as nft reads it in tcx, where
    /// the outer tag is in the skb's metadata: nft rebuilds the frame
    /// with the tag in place (`nft_payload_copy_vlan`). Bytes 12-13 are
    /// the tag's type, 14-15 its TCI, and from 16 on the frame's bytes 4
    /// earlier; without a tag, the frame as it is. Each is chosen by
    /// arithmetic on `vlan_present` (0 or 1), so a test stays one block.
    fn ll_rebuilt(&mut self, k: u32, n: u32) -> Val {
        let mut acc: Option<Val> = None;
        let mut at = k;
        let end = k + n;
        while at < end {
            let (piece, len) = if at < 12 {
                let len = (12 - at).min(end - at);
                (self.bytes(None, at, len), len)
            } else if at < 16 {
                // The 16-bit field at 12 or 14, then the bytes wanted.
                let field_at = if at < 14 { 12 } else { 14 };
                let tagged = if field_at == 12 {
                    self.ir.val(ValNode::Meta(Meta::VlanProto))
                } else {
                    self.ir.val(ValNode::Meta(Meta::VlanTci))
                };
                let plain = self.ir.load(None, field_at, 2);
                let field = self.select_tagged(tagged, plain);
                let len = (field_at + 2 - at).min(end - at);
                // Keep bytes at..at+len of the two.
                let skip_low = 8 * (field_at + 2 - at - len);
                let sh = self.k(skip_low);
                let v = self.bin(BinOp::Shr, field, sh);
                let m = self.k(ones32(8 * len));
                (self.bin(BinOp::And, v, m), len)
            } else {
                // The frame's bytes 4 earlier when tagged.
                let len = end - at;
                let off = self.ll_shift();
                (self.bytes(Some(off), at - 4, len), len)
            };
            acc = Some(match acc {
                None => piece,
                Some(a) => {
                    let sh = self.k(8 * len);
                    let a = self.bin(BinOp::Shl, a, sh);
                    self.bin(BinOp::Or, a, piece)
                }
            });
            at += len;
        }
        acc.expect("at least one byte")
    }

    /// `vlan_present ? tagged : plain`, as `plain + present * (tagged -
    /// plain)`.
    fn select_tagged(&mut self, tagged: Val, plain: Val) -> Val {
        let present = self.ir.val(ValNode::Meta(Meta::VlanPresent));
        let d = self.bin(BinOp::Sub, tagged, plain);
        let d = self.bin(BinOp::Mul, present, d);
        self.bin(BinOp::Add, plain, d)
    }

    /// 4 without a tag, 0 with one: the frame's bytes from 16 on are at
    /// `this + k - 4`.
    fn ll_shift(&mut self) -> Val {
        let present = self.ir.val(ValNode::Meta(Meta::VlanPresent));
        let four = self.k(4);
        let tagged = self.bin(BinOp::Mul, present, four);
        self.bin(BinOp::Sub, four, tagged)
    }

    /// The formula of `test` over `parts`.
    pub(super) fn test_formula(&mut self, parts: &[Part], test: &Test) -> F {
        match *test {
            Test::Cmp { op, value } => {
                let part = &parts[0];
                match op {
                    NftOp::Eq => self.eq(part, value),
                    NftOp::Ne => self.eq(part, value).not(),
                    NftOp::Gt => self.order(part, value, true),
                    NftOp::Ge => self.order(part, value, false),
                    NftOp::Lt => self.order(part, value, false).not(),
                    NftOp::Le => self.order(part, value, true).not(),
                }
            }
            Test::Range { low, high, negated } => {
                let f = self.range(&parts[0], low, high);
                if negated { f.not() } else { f }
            }
            Test::Prefix { .. } => unreachable!("match_blocks makes prefixes comparisons"),
            Test::InSet { set, negated } => {
                let set = &self.rs.sets[set];
                let f = self.in_set(parts, set);
                if negated { f.not() } else { f }
            }
        }
    }

    /// Whether the key is an element of `set`.
    fn in_set(&mut self, parts: &[Part], set: &Set) -> F {
        let elements: Vec<F> = set
            .elements
            .iter()
            .map(|e| self.element(parts, &e.key))
            .collect();
        F::or(elements)
    }

    /// Whether the key is this element.
    pub(super) fn element(&mut self, parts: &[Part], key: &[ElemKey]) -> F {
        let tests = parts
            .iter()
            .zip(key)
            .map(|(p, k)| match *k {
                ElemKey::Value(v) => self.eq(p, v),
                ElemKey::Range(l, h) => self.range(p, l, h),
            })
            .collect();
        F::and(tests)
    }

    fn range(&mut self, p: &Part, low: u128, high: u128) -> F {
        let ge = self.order(p, low, false);
        let le = self.order(p, high, true).not();
        F::and(vec![ge, le])
    }

    /// `part == value`.
    fn eq(&mut self, p: &Part, value: u128) -> F {
        match p {
            Part::Known(v) => F::Const(*v == value),
            Part::Words {
                words,
                widths,
                shift,
                ..
            } => {
                let cs = split_words(value << shift, widths);
                let tests = words
                    .iter()
                    .zip(cs)
                    .map(|(&w, c)| F::Test(self.cmp_cond(w, CmpOp::Eq, c)))
                    .collect();
                F::and(tests)
            }
        }
    }

    /// `part > value` (`strict`) or `part >= value`, word by word.
    fn order(&mut self, p: &Part, value: u128, strict: bool) -> F {
        match p {
            Part::Known(v) => F::Const(if strict { *v > value } else { *v >= value }),
            Part::Words {
                words,
                widths,
                shift,
                ..
            } => {
                let cs = split_words(value << shift, widths);
                let n = words.len();
                // From the last word up: the last compares with `op`, each
                // earlier one is greater, or equal and the rest holds.
                let last_op = if strict { CmpOp::Gt } else { CmpOp::Ge };
                let mut f = F::Test(self.cmp_cond(words[n - 1], last_op, cs[n - 1]));
                for i in (0..n - 1).rev() {
                    let gt = F::Test(self.cmp_cond(words[i], CmpOp::Gt, cs[i]));
                    let eq = F::Test(self.cmp_cond(words[i], CmpOp::Eq, cs[i]));
                    f = F::or(vec![gt, F::and(vec![eq, f])]);
                }
                f
            }
        }
    }

    pub(super) fn cmp_cond(&mut self, a: Val, op: CmpOp, k: u32) -> Cond {
        let b = self.k(k);
        Cond::Cmp {
            a,
            op,
            b,
            relation: false,
        }
    }
}

/// `ip saddr 10.0.0.0/8` as nft compiles it (`netlink_gen_relational`):
/// a prefix of whole bytes of a field of whole bytes loads only those
/// bytes and compares them (so a packet that ends after them matches);
/// any other prefix masks the field.
fn prefix_as_cmp(key: &Key, value: u128, len: u32, negated: bool) -> (Key, Test) {
    let op = if negated { NftOp::Ne } else { NftOp::Eq };
    let sel = &key.parts[0];
    let bits = sel.bits();
    let mask = ones(bits) & !ones(bits - len);
    match sel.source.load() {
        Some(load)
            if load.shift == 0
                && bits.is_multiple_of(8)
                && len.is_multiple_of(8)
                && sel.mask.is_none() =>
        {
            let part = Selector {
                source: Source::Raw(Load {
                    base: load.base,
                    offset: load.offset,
                    len: len / 8,
                    shift: 0,
                    bits: len,
                }),
                mask: None,
                span: sel.span,
            };
            let value = value >> (bits - len);
            (Key::single(part), Test::Cmp { op, value })
        }
        _ => {
            let mut part = sel.clone();
            part.mask = Some(sel.mask.map_or(mask, |m| m & mask));
            (Key::single(part), Test::Cmp { op, value })
        }
    }
}

/// The guards of a part.
fn guards_of(p: &Part) -> Vec<Val> {
    match p {
        Part::Words { guards, .. } => guards.clone(),
        _ => Vec::new(),
    }
}

/// The prerequisites of a part.
fn pre_of(p: &Part) -> Vec<Cond> {
    match p {
        Part::Words { pre, .. } => pre.clone(),
        _ => Vec::new(),
    }
}

/// The word widths of `len` bytes: one word up to 4 bytes, else the odd
/// bytes first, then 4-byte words.
fn chunks(len: u32) -> Vec<u32> {
    if len <= 4 {
        return vec![8 * len];
    }
    let mut out = Vec::new();
    if !len.is_multiple_of(4) {
        out.push(8 * (len % 4));
    }
    out.extend(std::iter::repeat_n(32, (len / 4) as usize));
    out
}

/// `v` cut into words of `widths` bits, most significant first.
pub(crate) fn split_words(v: u128, widths: &[u32]) -> Vec<u32> {
    words_of(v, widths).collect()
}

/// [`split_words`] without the list: the words one by one.
pub(crate) fn words_of(v: u128, widths: &[u32]) -> impl Iterator<Item = u32> + '_ {
    let mut rest: u32 = widths.iter().sum();
    widths.iter().map(move |&w| {
        rest -= w;
        ((v >> rest) & ones(w)) as u32
    })
}

/// The lowest `bits` bits set.
pub(super) fn ones(bits: u32) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

/// The lowest `bits` bits set, at most 32.
fn ones32(bits: u32) -> u32 {
    ones(bits.min(32)) as u32
}

/// A device name as nft compares it: 16 bytes, zero-padded.
fn name_value(name: &str) -> u128 {
    let mut b = [0u8; 16];
    let n = name.len().min(16);
    b[..n].copy_from_slice(&name.as_bytes()[..n]);
    u128::from_be_bytes(b)
}
