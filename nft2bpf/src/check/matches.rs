//! Matches: the left side resolved to selectors of the field table, the
//! right side to a test with constants of the selectors' types, nft's
//! dependencies before them.
//!
//! nft's meanings of the relational forms:
//!
//! | written | means |
//! |---|---|
//! | `F V`, `F == V` | `F == V` |
//! | `F != V` | `F != V` |
//! | `F < V` (`>`, `<=`, `>=`) | unsigned comparison of the big-endian value |
//! | `F A-B` (`!=`) | `A <= F <= B` (not) |
//! | `F P/N` (`!=`) | `F & mask(N) == P & mask(N)` (not) |
//! | `F { ... }`, `F @s` (`!=`) | membership (not) |
//! | `F & M == V` | `F & M == V` (and `&` only: nft2bpf refuses `|`, `^`, shifts on the left) |
//! | `flags syn` (bit mask type, no operator) | `flags & syn != 0` |
//! | `flags syn,ack` | `flags & (syn|ack) != 0` |
//! | `flags == syn` | `flags == syn` |
//! | `flags ! syn` | `flags & syn == 0` |
//! | `flags syn / syn,ack` | `flags & (syn|ack) == syn` |
//! | `iifname "eth*"` | the name starts with `eth` |

use crate::check::context::{Dep, ProtoCtx};
use crate::check::fields::{Base, Header, Load, MetaKey, field, field_names};
use crate::check::sets::{key_desc, normalize};
use crate::check::tree::{
    CmpOp, ElemKey, Element, Key, KeyType, Match, Selector, Set, SetId, Source, Stmt, TableId, Test,
};
use crate::check::types::Type;
use crate::check::value::{constant, flags, ifname, mismatch, prefix, range};
use crate::check::{Checker, Names, refuse};
use crate::error::Error;
use crate::syntax::ast::{self, BinOp, Expr, ExprKind, RelOp};
use crate::syntax::parser::UNQUALIFIED_META;

/// nft's meta keys that need `meta` (`meta_key_qualified`); with the
/// unqualified ones ([`UNQUALIFIED_META`]), every meta key nft knows: the
/// ones not in [`MetaKey`] are refused by name.
const QUALIFIED_META: [&str; 14] = [
    "length", "protocol", "priority", "iifkind", "oifkind", "secpath", "nfproto", "l4proto",
    "secmark", "sdif", "sdifname", "time", "day", "hour",
];

/// The types and widths of a key's parts.
pub(crate) fn key_types(parts: &[Selector]) -> Vec<KeyType> {
    parts
        .iter()
        .map(|p| KeyType {
            ty: p.source.ty(),
            bits: p.bits(),
        })
        .collect()
}

/// A key must have a set's key types: "datatype mismatch, expected
/// KEY, expression has type SET".
pub(crate) fn same_key(key: &[KeyType], set: &[KeyType], at: &Expr) -> Result<(), Error> {
    let same = key.len() == set.len()
        && key
            .iter()
            .zip(set)
            .all(|(a, b)| a.ty == b.ty && (a.bits == b.bits || a.ty != Type::Integer));
    if same {
        return Ok(());
    }
    Err(mismatch(&key_desc(key), &key_desc(set), at))
}

impl Checker {
    /// A selector without mask: `PROTO FIELD`, `meta KEY`, `@BASE,O,L`.
    pub(crate) fn selector(&self, e: &Expr) -> Result<Selector, Error> {
        let source = match &e.kind {
            ExprKind::Payload { proto, field: name } => {
                let Some(header) = Header::from_name(&proto.name) else {
                    return Err(Error::new(
                        refuse::message(&format!("{} {}", proto.name, name.name)),
                        e.span,
                    ));
                };
                let Some((f, _)) = field(header, &name.name) else {
                    return Err(Error::new(
                        format!(
                            "`{} {}`: {} has no field `{}` nft2bpf knows (it knows {})",
                            proto.name,
                            name.name,
                            proto.name,
                            name.name,
                            field_names(header).join(", ")
                        ),
                        name.span,
                    ));
                };
                Source::Field(f)
            }
            ExprKind::Meta { key } => match MetaKey::from_name(&key.name) {
                Some(k) => Source::Meta(k),
                None if QUALIFIED_META.contains(&key.name.as_str())
                    || UNQUALIFIED_META.contains(&key.name.as_str()) =>
                {
                    let what = format!("meta {}", key.name);
                    let message = match refuse::why(&what) {
                        Some(why) => format!("`{what}`: {why}"),
                        None => format!("`{what}`: not implemented in nft2bpf"),
                    };
                    return Err(Error::new(message, e.span));
                }
                None => {
                    return Err(Error::new(
                        format!("unknown meta key `{}`", key.name),
                        key.span,
                    ));
                }
            },
            ExprKind::Raw { base, offset, len } => {
                let base = match base.name.as_str() {
                    "ll" => Base::Link,
                    "nh" => Base::Network,
                    "th" => Base::Transport,
                    other => {
                        return Err(Error::new(
                            format!("unknown payload base `{other}` (ll, nh or th)"),
                            base.span,
                        ));
                    }
                };
                if len.value == 0 || len.value > 128 {
                    return Err(Error::new("a raw payload is 1 to 128 bits long", len.span));
                }
                let offset = u32::try_from(offset.value)
                    .ok()
                    .filter(|o| *o <= 0xffff * 8)
                    .ok_or_else(|| Error::new("raw payload offset out of range", offset.span))?;
                Source::Raw(Load::new(base, offset, len.value as u32))
            }
            ExprKind::Unsupported(u) => return Err(Error::new(refuse::message(&u.what), u.span)),
            _ => {
                return Err(Error::new(
                    format!("expected a selector (`ip saddr`, `meta l4proto`, ...), not `{e}`"),
                    e.span,
                ));
            }
        };
        Ok(Selector {
            source,
            mask: None,
            span: e.span,
        })
    }

    /// The left side of a match or a map key: selectors with `&` masks,
    /// concatenated.
    pub(crate) fn key_parts(&self, e: &Expr) -> Result<Vec<Selector>, Error> {
        match &e.kind {
            ExprKind::Concat(parts) => parts.iter().map(|p| self.masked(p)).collect(),
            _ => Ok(vec![self.masked(e)?]),
        }
    }

    /// A selector, with `& MASK` folded into its mask.
    fn masked(&self, e: &Expr) -> Result<Selector, Error> {
        match &e.kind {
            ExprKind::Binary {
                op: BinOp::And,
                left,
                right,
            } => {
                let mut s = self.masked(left)?;
                let want = KeyType {
                    ty: s.source.ty(),
                    bits: s.bits(),
                };
                let m = constant(right, want)?;
                s.mask = Some(s.mask.map_or(m, |old| old & m));
                s.span = e.span;
                Ok(s)
            }
            ExprKind::Binary { op, .. } => Err(Error::new(
                format!(
                    "`{}` on the left of a match: nft2bpf supports `&` masks only",
                    op.text()
                ),
                e.span,
            )),
            _ => self.selector(e),
        }
    }

    /// The matches nft adds before reading `parts`, pushed to `stmts`.
    pub(crate) fn add_dependencies(
        &mut self,
        parts: &[Selector],
        table: TableId,
        ctx: &mut ProtoCtx,
        stmts: &mut Vec<Stmt>,
    ) -> Result<(), Error> {
        for p in parts {
            let Source::Field(f) = p.source else { continue };
            for dep in ctx.dependencies(f, p.span)? {
                let (source, value) = match dep {
                    Dep::Meta(k, v) => (Source::Meta(k), v),
                    Dep::Field(f, v) => (Source::Field(f), v),
                };
                stmts.push(implied(
                    source,
                    Test::Cmp {
                        op: CmpOp::Eq,
                        value,
                    },
                    p.span,
                ));
            }
            let guard = field(f.header, f.name).map_or(&[][..], |(_, g)| g);
            if !guard.is_empty() && ctx.needs_guard(f.header) {
                let (type_field, _) = field(f.header, "type").expect("ICMP headers have a type");
                let kt = KeyType {
                    ty: type_field.ty,
                    bits: type_field.bits,
                };
                let elements = guard
                    .iter()
                    .map(|v| Element {
                        key: vec![ElemKey::Value(*v)],
                        verdict: None,
                        timeout: None,
                        span: p.span,
                    })
                    .collect();
                let set = self.push_set(table, vec![kt], false, elements, p.span)?;
                stmts.push(implied(
                    Source::Field(type_field),
                    Test::InSet {
                        set,
                        negated: false,
                    },
                    p.span,
                ));
            }
        }
        Ok(())
    }

    /// A relation: its dependencies and itself, pushed to `stmts`.
    pub(crate) fn relation(
        &mut self,
        rel: &ast::Relation,
        ctx: &mut ProtoCtx,
        names: &Names,
        stmts: &mut Vec<Stmt>,
    ) -> Result<(), Error> {
        let mut parts = self.key_parts(&rel.left)?;
        self.add_dependencies(&parts, names.table, ctx, stmts)?;
        let kts = key_types(&parts);
        let negated = rel.op == RelOp::Ne;
        let set_op = |what: &str| -> Result<bool, Error> {
            match rel.op {
                RelOp::Implicit | RelOp::Eq | RelOp::Ne => Ok(negated),
                op => Err(Error::new(
                    format!(
                        "Relational expression ({}) is undefined for {what} expressions",
                        op.text()
                    ),
                    rel.span,
                )),
            }
        };
        if let Some(m) = &rel.mask
            && matches!(rel.right.kind, ExprKind::Set(_) | ExprKind::SetRef(_))
        {
            return Err(Error::new(
                "a flag mask (`/`) needs a value before it, not a set",
                m.span,
            ));
        }
        let test = match &rel.right.kind {
            ExprKind::Set(_) => {
                let negated = set_op("set")?;
                let elements = self.anonymous_elements(&rel.right, &kts, false, names)?;
                if !negated {
                    learn(ctx, &parts, &first_values(&elements));
                }
                let set =
                    self.push_set(names.table, kts.clone(), false, elements, rel.right.span)?;
                Test::InSet { set, negated }
            }
            ExprKind::SetRef(name) => {
                let negated = set_op("set")?;
                let set = self.named_set(name, &rel.right, names)?;
                if self.out.sets[set].is_map {
                    return Err(Error::new(
                        format!("`@{name}` is a map: look it up with `vmap`"),
                        rel.right.span,
                    ));
                }
                same_key(&kts, &self.out.sets[set].key, &rel.right)?;
                Test::InSet { set, negated }
            }
            _ if parts.len() > 1 => {
                return Err(Error::new(
                    "Use concatenations with sets and maps, not singleton values",
                    rel.span,
                ));
            }
            ExprKind::Concat(_) => {
                return Err(Error::new(
                    "Use concatenations with sets and maps, not singleton values",
                    rel.right.span,
                ));
            }
            ExprKind::Range { low, high } => {
                let negated = set_op("range")?;
                let (low, high) = range(&rel.right, low, high, kts[0])?;
                Test::Range { low, high, negated }
            }
            ExprKind::Prefix { value, len } => {
                let negated = set_op("prefix")?;
                let (v, m) = prefix(value, len.value, &rel.right, kts[0])?;
                let p = &mut parts[0];
                let len = len.value as u32;
                if p.mask.is_none() && len > 0 && len < kts[0].bits {
                    Test::Prefix {
                        value: v,
                        len,
                        negated,
                    }
                } else {
                    // `/0`, a whole value, or a prefix of a masked value:
                    // the masked comparison nft makes of it.
                    p.mask = Some(p.mask.map_or(m, |old| old & m));
                    Test::Cmp {
                        op: if negated { CmpOp::Ne } else { CmpOp::Eq },
                        value: v,
                    }
                }
            }
            _ => self.value_test(rel, &mut parts[0], kts[0], ctx)?,
        };
        stmts.push(Stmt::Match(Match {
            key: Key { parts },
            test,
            implied: false,
            span: rel.span,
        }));
        Ok(())
    }

    /// A comparison with a value (or a list of flags).
    fn value_test(
        &self,
        rel: &ast::Relation,
        sel: &mut Selector,
        kt: KeyType,
        ctx: &mut ProtoCtx,
    ) -> Result<Test, Error> {
        let right = &rel.right;
        let op = match rel.op {
            RelOp::Implicit | RelOp::Eq => CmpOp::Eq,
            RelOp::Ne => CmpOp::Ne,
            RelOp::Lt => CmpOp::Lt,
            RelOp::Gt => CmpOp::Gt,
            RelOp::Le => CmpOp::Le,
            RelOp::Ge => CmpOp::Ge,
            RelOp::Not => CmpOp::Eq,
        };
        // A device name pattern: `"eth*"`.
        if kt.ty == Type::IfName
            && let ExprKind::Word(w) | ExprKind::Quoted(w) = &right.kind
        {
            let (value, mask) = ifname(w, right)?;
            if mask.is_some() {
                sel.mask = mask;
            }
            return Ok(Test::Cmp { op, value });
        }
        let value = flags(right, kt)?;
        if let Some(m) = &rel.mask {
            // `flags V / M`: `flags & M == V`.
            let mask = flags(m, kt)?;
            sel.mask = Some(sel.mask.map_or(mask, |old| old & mask));
            return Ok(Test::Cmp { op, value });
        }
        let list = matches!(right.kind, ExprKind::List(_));
        match rel.op {
            RelOp::Not => {
                if sel.mask.is_some() {
                    return Err(Error::new(
                        "cannot combine negation with binary expression",
                        rel.span,
                    ));
                }
                if !kt.ty.is_bitmask() {
                    return Err(Error::new(
                        "negation can only be used with singleton bitmask values",
                        rel.span,
                    ));
                }
                sel.mask = Some(value);
                Ok(Test::Cmp {
                    op: CmpOp::Eq,
                    value: 0,
                })
            }
            RelOp::Implicit if kt.ty.is_bitmask() && sel.mask.is_none() => {
                // Flags without an operator: any of them set.
                sel.mask = Some(value);
                Ok(Test::Cmp {
                    op: CmpOp::Ne,
                    value: 0,
                })
            }
            _ if list && op != CmpOp::Eq && op != CmpOp::Ne => Err(Error::new(
                format!(
                    "Relational expression ({}) is undefined for list expressions",
                    rel.op.text()
                ),
                rel.span,
            )),
            _ => {
                if op == CmpOp::Eq && sel.mask.is_none() {
                    learn(ctx, std::slice::from_ref(sel), &[value]);
                }
                Ok(Test::Cmp { op, value })
            }
        }
    }

    /// A set a rule names: declared in the table.
    pub(crate) fn named_set(&self, name: &str, at: &Expr, names: &Names) -> Result<SetId, Error> {
        names.sets.get(name).copied().ok_or_else(|| {
            Error::new(
                format!(
                    "set `{name}` does not exist in table netdev {}",
                    names.table_name
                ),
                at.span,
            )
        })
    }

    /// An anonymous set or map from a rule: interval when an element is a
    /// range or prefix, elements normalized.
    pub(crate) fn anonymous_set(
        &mut self,
        e: &Expr,
        key: Vec<KeyType>,
        is_map: bool,
        names: &Names,
    ) -> Result<SetId, Error> {
        let elements = self.anonymous_elements(e, &key, is_map, names)?;
        self.push_set(names.table, key, is_map, elements, e.span)
    }

    /// The elements of an anonymous set, in written order.
    fn anonymous_elements(
        &self,
        e: &Expr,
        key: &[KeyType],
        is_map: bool,
        names: &Names,
    ) -> Result<Vec<Element>, Error> {
        let probe = Set {
            table: names.table,
            name: None,
            span: e.span,
            key: key.to_vec(),
            interval: true,
            is_map,
            size: None,
            state: Default::default(),
            constant: false,
            elements: Vec::new(),
        };
        self.elements(e, &probe, true, names)
    }

    /// Adds an anonymous set of `table`.
    fn push_set(
        &mut self,
        table: TableId,
        key: Vec<KeyType>,
        is_map: bool,
        elements: Vec<Element>,
        span: pktmatch::Span,
    ) -> Result<SetId, Error> {
        let interval = elements
            .iter()
            .any(|el| el.key.iter().any(|k| matches!(k, ElemKey::Range(..))));
        let mut set = Set {
            table,
            name: None,
            span,
            key,
            interval,
            is_map,
            size: None,
            state: Default::default(),
            constant: false,
            elements,
        };
        normalize(&mut set)?;
        Ok(self.out.sets.push(set))
    }
}

/// The first part's exact values of elements, in their order.
fn first_values(elements: &[Element]) -> Vec<u128> {
    elements
        .iter()
        .filter_map(|e| match e.key.first() {
            Some(ElemKey::Value(v)) => Some(*v),
            _ => None,
        })
        .collect()
}

/// A match nft adds.
fn implied(source: Source, test: Test, span: pktmatch::Span) -> Stmt {
    Stmt::Match(Match {
        key: Key::single(Selector {
            source,
            mask: None,
            span,
        }),
        test,
        implied: true,
        span,
    })
}

/// What a match on a protocol field teaches the protocol context.
fn learn(ctx: &mut ProtoCtx, parts: &[Selector], values: &[u128]) {
    let [p] = parts else { return };
    if p.mask.is_some() {
        return;
    }
    match p.source {
        Source::Field(f) => ctx.learn_field(f, values),
        Source::Meta(k) => ctx.learn_meta(k, values),
        Source::Raw(_) => {}
    }
}
