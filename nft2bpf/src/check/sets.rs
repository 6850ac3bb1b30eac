//! Sets and maps: declarations (`type`, `typeof`, `flags`), elements
//! checked against the key's types, and the normal form lowering reads.

use pktmatch::Span;

use crate::check::tree::{ElemKey, Element, KeyType, Set, SetState, TableId, Verdict};
use crate::check::types::Type;
use crate::check::value::{Shape, elem_part};
use crate::check::{Checker, Names, refuse};
use crate::error::Error;
use crate::syntax::ast::{Expr, ExprKind, Ident, SetDecl, SetItem};

impl Checker {
    /// A named set's declaration: its key, flags and kind (elements come
    /// later, once chains have ids).
    pub(crate) fn declare_set(&self, decl: &SetDecl, table: TableId) -> Result<Set, Error> {
        let mut key = None;
        let mut interval = false;
        let mut size = None;
        let mut state = SetState::default();
        let mut constant = false;
        for item in &decl.items {
            match item {
                SetItem::Type {
                    key: names,
                    data,
                    span,
                } => {
                    let mut parts = Vec::new();
                    for n in names {
                        let Some((ty, bits)) = Type::declared(&n.name) else {
                            return Err(Error::new(format!("unknown datatype {}", n.name), n.span));
                        };
                        parts.push(KeyType { ty, bits });
                    }
                    self.map_data(decl, data.as_ref().map(|d| (&d.name, d.span)), *span)?;
                    key = Some(parts);
                }
                SetItem::Typeof {
                    key: exprs,
                    data,
                    span,
                } => {
                    let mut parts = Vec::new();
                    for e in exprs {
                        let s = self.selector(e)?;
                        parts.push(KeyType {
                            ty: s.source.ty(),
                            bits: s.bits(),
                        });
                    }
                    self.map_data(decl, data.as_ref().map(|d| (&d.name, d.span)), *span)?;
                    key = Some(parts);
                }
                SetItem::Flags(flags) => {
                    for f in flags {
                        match f.name.as_str() {
                            "interval" => interval = true,
                            "constant" => constant = true,
                            "timeout" => state.timeouts = true,
                            "dynamic" => state.dynamic = true,
                            other => {
                                return Err(Error::new(
                                    format!("unknown set flag `{other}`"),
                                    f.span,
                                ));
                            }
                        }
                    }
                }
                SetItem::Policy(p) => {
                    if !matches!(p.name.as_str(), "performance" | "memory") {
                        return Err(Error::new(
                            format!("unknown set policy `{}`", p.name),
                            p.span,
                        ));
                    }
                }
                SetItem::Timeout(t) => {
                    // nft sets `flags timeout` with a timeout.
                    state.timeouts = true;
                    state.timeout = Some(time_ms(t)?);
                }
                // nft2bpf tests each element's expiry on every packet: no
                // collection to schedule.
                SetItem::GcInterval(t) => {
                    time_ms(t)?;
                }
                SetItem::Unsupported(u) => {
                    return Err(Error::new(refuse::message(&u.what), u.span));
                }
                SetItem::Size(n) => {
                    // nft's `size` is a u32 of the kernel's set
                    // description; 0 is no limit.
                    let Ok(n32) = u32::try_from(n.value) else {
                        return Err(Error::new(
                            format!("size {} is too large: at most {}", n.value, u32::MAX),
                            n.span,
                        ));
                    };
                    size = (n32 > 0).then_some(n32);
                }
                SetItem::Elements(_)
                | SetItem::Counter(_)
                | SetItem::AutoMerge(_)
                | SetItem::Comment(_) => {}
            }
        }
        let Some(key) = key else {
            return Err(Error::new(
                "set definition does not specify key",
                decl.name.span,
            ));
        };
        if state.stateful() && interval {
            return Err(Error::new(
                "element timeouts and dynamic sets with `flags interval` are not implemented in nft2bpf",
                decl.span,
            ));
        }
        if state.stateful() && decl.is_map {
            return Err(Error::new(
                "element timeouts and dynamic maps are not implemented in nft2bpf (sets are)",
                decl.span,
            ));
        }
        if state.dynamic && constant {
            return Err(Error::new(
                "a set cannot be both `constant` and `dynamic`",
                decl.span,
            ));
        }
        Ok(Set {
            table,
            name: Some(decl.name.name.clone()),
            span: decl.span,
            key,
            interval,
            is_map: decl.is_map,
            size,
            state,
            constant,
            elements: Vec::new(),
        })
    }

    /// A map's data type must be `verdict`; a set has none.
    fn map_data(
        &self,
        decl: &SetDecl,
        data: Option<(&String, Span)>,
        span: Span,
    ) -> Result<(), Error> {
        match (decl.is_map, data) {
            (true, Some((name, _))) if name == "verdict" => Ok(()),
            (true, Some((_, at))) => Err(Error::new(refuse::message("map data"), at)),
            (true, None) => Err(Error::new(
                "map definition does not specify data type (`type KEY : verdict`)",
                span,
            )),
            (false, Some((_, at))) => {
                Err(Error::new("a set has no data type; declare a `map`", at))
            }
            (false, None) => Ok(()),
        }
    }

    /// The elements of a set expression (`{ ... }`, nested sets
    /// flattened) for `set`: each key checked against the set's key types,
    /// each map element's verdict resolved in `names`.
    pub(crate) fn elements(
        &self,
        e: &Expr,
        set: &Set,
        anonymous: bool,
        names: &Names,
    ) -> Result<Vec<Element>, Error> {
        self.elements_with(e, set, anonymous, names, None)
    }

    /// [`Checker::elements`], where a nested set's elements take the data
    /// of the element the set stands in (`{ $web : jump web }` with
    /// `define web = { 80, 443 }`).
    fn elements_with(
        &self,
        e: &Expr,
        set: &Set,
        anonymous: bool,
        names: &Names,
        inherited: Option<&Expr>,
    ) -> Result<Vec<Element>, Error> {
        let ExprKind::Set(elems) = &e.kind else {
            return Err(Error::new("expected a set of elements in braces", e.span));
        };
        let mut out = Vec::with_capacity(elems.len());
        for el in elems {
            let data = el.data.as_deref().or(inherited);
            if let ExprKind::Set(_) = el.key.kind {
                out.extend(self.elements_with(&el.key, set, anonymous, names, data)?);
                continue;
            }
            let parts: &[Expr] = match &el.key.kind {
                ExprKind::Concat(parts) => parts,
                _ => std::slice::from_ref(&el.key),
            };
            if parts.len() > set.key.len() {
                return Err(Error::new("too many concatenation components", el.key.span));
            }
            if parts.len() < set.key.len() {
                return Err(Error::new(
                    format!("invalid data type, expected {}", key_desc(&set.key)),
                    el.key.span,
                ));
            }
            let mut key = Vec::with_capacity(parts.len());
            for (p, want) in parts.iter().zip(&set.key) {
                let (k, shape) = elem_part(p, *want)?;
                if !anonymous && !set.interval && shape != Shape::Value {
                    let what = if shape == Shape::Range {
                        "range"
                    } else {
                        "prefix"
                    };
                    return Err(Error::new(
                        format!(
                            "You must add 'flags interval' to your set declaration if you want to add {what} elements"
                        ),
                        p.span,
                    ));
                }
                key.push(k);
            }
            let verdict = match (data, set.is_map) {
                (Some(d), true) => Some(self.map_verdict(d, names)?),
                (None, true) => {
                    return Err(Error::new(
                        "map element without data (`KEY : VERDICT`)",
                        el.span,
                    ));
                }
                (Some(d), false) => {
                    return Err(Error::new(
                        "set element with data: only maps have data",
                        d.span,
                    ));
                }
                (None, false) => None,
            };
            let timeout = match &el.timeout {
                Some(t) if !set.state.timeouts => {
                    return Err(Error::new(
                        "an element timeout needs `flags timeout` on its set (nft: Invalid argument)",
                        t.span,
                    ));
                }
                Some(t) => Some(time_ms(t)?),
                None => None,
            };
            out.push(Element {
                key,
                verdict,
                timeout,
                span: el.span,
            });
        }
        Ok(out)
    }

    /// The verdict after `:` in a verdict map.
    fn map_verdict(&self, d: &Expr, names: &Names) -> Result<Verdict, Error> {
        match &d.kind {
            ExprKind::Verdict(v) => self.verdict(v, d.span, names),
            _ => Err(Error::new(
                "datatype mismatch, expected netfilter verdict",
                d.span,
            )),
        }
    }
}

/// A time as nft reads it (its `time_parse`): `1d2h3m4s5ms`, each unit
/// at most once and in that order, or a number of seconds; in
/// milliseconds.
pub(crate) fn time_ms(t: &Ident) -> Result<u64, Error> {
    let bad = || Error::new(format!("wrong time format: `{}`", t.name), t.span);
    if let Ok(secs) = t.name.parse::<u64>() {
        return secs.checked_mul(1000).ok_or_else(bad);
    }
    let mut rest = t.name.as_str();
    let mut total: u64 = 0;
    let mut last_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (unit, ms, len) = if rest.starts_with("ms") {
            (5, 1, 2)
        } else {
            match rest.as_bytes().first() {
                Some(b'd') => (1, 86_400_000, 1),
                Some(b'h') => (2, 3_600_000, 1),
                Some(b'm') => (3, 60_000, 1),
                Some(b's') => (4, 1000, 1),
                _ => return Err(bad()),
            }
        };
        if unit <= last_unit {
            return Err(bad());
        }
        last_unit = unit;
        rest = &rest[len..];
        total = n
            .checked_mul(ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    Ok(total)
}

/// "concatenation of (IPv4 address, internet network service)", or the
/// one type's description.
pub(crate) fn key_desc(key: &[KeyType]) -> String {
    if let [one] = key {
        return one.ty.desc().to_string();
    }
    let names: Vec<&str> = key.iter().map(|k| k.ty.desc()).collect();
    format!("concatenation of ({})", names.join(", "))
}

/// The map entries a named set's elements take: one per element, but
/// in a one-part interval set (an LPM trie) one per prefix of each
/// element ([`crate::compile::sets::prefixes`]).
pub(crate) fn entry_count(set: &Set, elements: &[Element]) -> usize {
    if !(set.interval && set.key.len() == 1) {
        return elements.len();
    }
    elements
        .iter()
        .map(|e| {
            let (low, high) = e.key[0].bounds();
            crate::compile::sets::prefixes(low, high, set.key[0].bits).len()
        })
        .sum()
}

/// A named set's elements must fit its `size`, as the kernel refuses
/// more (`ENFILE`).
pub(crate) fn check_size(set: &Set) -> Result<(), Error> {
    let Some(size) = set.size else {
        return Ok(());
    };
    let entries = entry_count(set, &set.elements);
    if entries <= size as usize {
        return Ok(());
    }
    let name = set.name.as_deref().unwrap_or("");
    let what = if entries == set.elements.len() {
        format!("{entries} elements")
    } else {
        format!(
            "{} elements, {entries} map entries (a range takes one per prefix it is cut into)",
            set.elements.len()
        )
    };
    Err(Error::new(
        format!("set `{name}` is full: {what}, more than its size {size}"),
        set.span,
    ))
}

/// Puts a set's elements in the form lowering reads: exact duplicates
/// dropped; in a one-part interval set, sorted, and overlapping or
/// adjacent elements merged (an anonymous set) or refused as nft refuses
/// them (a named set, a map: "conflicting intervals specified"); a key
/// given two verdicts is an error.
pub(crate) fn normalize(set: &mut Set) -> Result<(), Error> {
    // Duplicates found by sorting the elements' indexes by key (and
    // position): no key is hashed or copied, which counts at a million
    // elements. The first of equal keys stays.
    let elements = std::mem::take(&mut set.elements);
    let mut order: Vec<u32> = (0..elements.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| {
        elements[a as usize]
            .key
            .cmp(&elements[b as usize].key)
            .then(a.cmp(&b))
    });
    let mut keep = vec![true; elements.len()];
    // The duplicate with another verdict that comes first in the file.
    let mut conflict: Option<u32> = None;
    // The first element of the keys equal to the one at hand.
    let mut lead = None;
    for &i in &order {
        let el = &elements[i as usize];
        match lead {
            Some(l) if elements[l as usize].key == el.key => {
                keep[i as usize] = false;
                if elements[l as usize].verdict != el.verdict {
                    conflict = Some(conflict.map_or(i, |c| c.min(i)));
                }
            }
            _ => lead = Some(i),
        }
    }
    if let Some(i) = conflict {
        return Err(Error::new(
            "element already exists with another verdict",
            elements[i as usize].span,
        ));
    }
    let mut unique: Vec<Element> = elements
        .into_iter()
        .zip(keep)
        .filter_map(|(e, k)| k.then_some(e))
        .collect();
    let one_part_interval = set.interval && set.key.len() == 1;
    if !one_part_interval {
        set.elements = unique;
        return Ok(());
    }
    unique.sort_by_key(|e| e.key[0].bounds());
    let merge = set.name.is_none() && !set.is_map;
    let mut out: Vec<Element> = Vec::with_capacity(unique.len());
    for el in unique {
        let (low, high) = el.key[0].bounds();
        if let Some(last) = out.last_mut() {
            let (l, h) = last.key[0].bounds();
            let overlaps = low <= h;
            let adjacent = h.checked_add(1) == Some(low);
            if overlaps && !merge {
                return Err(Error::new("conflicting intervals specified", el.span));
            }
            if merge && (overlaps || adjacent) {
                last.key[0] = ElemKey::Range(l, h.max(high));
                last.span = last.span.to(el.span);
                continue;
            }
        }
        out.push(el);
    }
    set.elements = out;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(named: bool, elements: &[(u128, u128)]) -> Set {
        Set {
            table: TableId::from_u32(0),
            name: named.then(|| "s".to_string()),
            span: Span::new(0, 1),
            key: vec![KeyType {
                ty: Type::InetService,
                bits: 16,
            }],
            interval: true,
            is_map: false,
            size: None,
            state: Default::default(),
            constant: false,
            elements: elements
                .iter()
                .enumerate()
                .map(|(i, &(l, h))| Element {
                    key: vec![if l == h {
                        ElemKey::Value(l)
                    } else {
                        ElemKey::Range(l, h)
                    }],
                    verdict: None,
                    timeout: None,
                    span: Span::new(i, i + 1),
                })
                .collect(),
        }
    }

    #[test]
    fn anonymous_intervals_merge_named_ones_conflict() {
        let mut s = set(false, &[(20, 30), (25, 25), (31, 40), (50, 50), (22, 22)]);
        normalize(&mut s).unwrap();
        let keys: Vec<ElemKey> = s.elements.iter().map(|e| e.key[0]).collect();
        assert_eq!(keys, vec![ElemKey::Range(20, 40), ElemKey::Value(50)]);
        let mut s = set(true, &[(22, 22), (20, 30)]);
        let e = normalize(&mut s).unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.span),
            ("conflicting intervals specified", Span::new(0, 1))
        );
        // Duplicates go quietly.
        let mut s = set(true, &[(22, 22), (22, 22)]);
        normalize(&mut s).unwrap();
        assert_eq!(s.elements.len(), 1);
    }

    #[test]
    fn duplicates_keep_the_first_and_a_second_verdict_is_refused_where_it_first_appears() {
        // A hash set: exact keys, in file order, the first of each kept.
        let mut s = set(true, &[(7, 7), (3, 3), (7, 7), (9, 9), (3, 3)]);
        s.interval = false;
        normalize(&mut s).unwrap();
        let kept: Vec<(ElemKey, Span)> = s.elements.iter().map(|e| (e.key[0], e.span)).collect();
        assert_eq!(
            kept,
            vec![
                (ElemKey::Value(7), Span::new(0, 1)),
                (ElemKey::Value(3), Span::new(1, 2)),
                (ElemKey::Value(9), Span::new(3, 4)),
            ]
        );
        // A map: 3 and 7 each get a second verdict; the error is at the
        // first such element of the file (3 at position 3).
        let mut s = set(true, &[(7, 7), (3, 3), (7, 7), (3, 3), (7, 7)]);
        s.interval = false;
        s.is_map = true;
        let verdicts = [
            Verdict::Accept,
            Verdict::Drop,
            Verdict::Accept,
            Verdict::Accept,
            Verdict::Drop,
        ];
        for (e, v) in s.elements.iter_mut().zip(verdicts) {
            e.verdict = Some(v);
        }
        let e = normalize(&mut s).unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.span),
            (
                "element already exists with another verdict",
                Span::new(3, 4)
            )
        );
    }

    #[test]
    fn the_top_of_the_range_does_not_overflow() {
        let mut s = set(false, &[(0, u128::MAX), (5, 5)]);
        s.key[0].bits = 128;
        normalize(&mut s).unwrap();
        assert_eq!(s.elements[0].key[0], ElemKey::Range(0, u128::MAX));
    }
}
