//! `define`, `redefine`, `undefine` and `$NAME`, as nft's parser keeps
//! them: a variable is visible from its definition to the end of the
//! block that holds it (the file, a table block, a chain block), and a
//! `define` may not reuse a name visible where it stands.
//!
//! Values are substituted into the tree. The substitution is bounded: a
//! value that uses a variable twice, defined with one that does, and so
//! on, would double in size at every step, so every expansion counts its
//! nodes against [`MAX_EXPANSION`], and the trees it makes stay within
//! [`MAX_HEIGHT`], the parser's bound.

use std::collections::HashMap;

use crate::error::Error;
use crate::syntax::ast::{Define, DefineKind, Expr, ExprKind, SetElem};
use crate::syntax::parser::MAX_HEIGHT;

/// How many expression nodes variables may expand to in the whole file.
pub const MAX_EXPANSION: usize = 1 << 22;

/// A defined value, with its tree's height and size.
#[derive(Debug, Clone)]
struct Value {
    expr: Expr,
    height: usize,
    size: usize,
}

/// The variables visible at a point of the file, innermost block last.
#[derive(Debug)]
pub(crate) struct Scopes {
    blocks: Vec<HashMap<String, Value>>,
    /// Nodes expansions may still make.
    budget: usize,
}

impl Scopes {
    /// The file's scope.
    pub(crate) fn new() -> Self {
        Scopes {
            blocks: vec![HashMap::new()],
            budget: MAX_EXPANSION,
        }
    }

    /// Enters a block.
    pub(crate) fn push(&mut self) {
        self.blocks.push(HashMap::new());
    }

    /// Leaves a block: its variables go.
    pub(crate) fn pop(&mut self) {
        self.blocks.pop();
    }

    /// A variable visible here.
    fn lookup(&self, name: &str) -> Option<&Value> {
        self.blocks.iter().rev().find_map(|b| b.get(name))
    }

    /// Runs a `define`, `redefine` or `undefine`.
    pub(crate) fn apply(&mut self, d: &Define) -> Result<(), Error> {
        let name = &d.name.name;
        match (d.kind, &d.value) {
            (DefineKind::Undefine, _) | (_, None) => {
                let block = self.blocks.last_mut().expect("the file's scope stays");
                if block.remove(name).is_none() {
                    return Err(Error::new(
                        format!("undefined symbol '{name}'"),
                        d.name.span,
                    ));
                }
            }
            (kind, Some(value)) => {
                if kind == DefineKind::Define && self.lookup(name).is_some() {
                    return Err(Error::new(
                        format!("redefinition of symbol '{name}'"),
                        d.name.span,
                    ));
                }
                let (expr, height, size) = self.expand(value)?;
                let block = self.blocks.last_mut().expect("the file's scope stays");
                block.insert(name.clone(), Value { expr, height, size });
            }
        }
        Ok(())
    }

    /// `e` with every variable replaced by its value.
    pub(crate) fn substitute(&mut self, e: &Expr) -> Result<Expr, Error> {
        self.expand(e).map(|(e, _, _)| e)
    }

    /// Substitutes, returning the tree's height and size.
    fn expand(&mut self, e: &Expr) -> Result<(Expr, usize, usize), Error> {
        let (kind, height, size) = match &e.kind {
            ExprKind::Variable(name) => {
                let Some(v) = self.lookup(name) else {
                    return Err(Error::new(format!("unknown identifier '{name}'"), e.span));
                };
                let v = v.clone();
                self.spend(v.size, e)?;
                // A value keeps its spans; a single value takes the use's
                // span, so that errors about it point at the use.
                let span = match v.expr.kind {
                    ExprKind::Set(_) => v.expr.span,
                    _ => e.span,
                };
                return Ok((Expr::new(v.expr.kind, span), v.height, v.size));
            }
            ExprKind::Binary { op, left, right } => {
                let (l, hl, sl) = self.expand(left)?;
                let (r, hr, sr) = self.expand(right)?;
                let kind = ExprKind::Binary {
                    op: *op,
                    left: Box::new(l),
                    right: Box::new(r),
                };
                (kind, hl.max(hr) + 1, sl + sr + 1)
            }
            ExprKind::Concat(parts) => {
                let (parts, h, s) = self.expand_all(parts)?;
                (ExprKind::Concat(parts), h + 1, s + 1)
            }
            ExprKind::List(items) => {
                let (items, h, s) = self.expand_all(items)?;
                (ExprKind::List(items), h + 1, s + 1)
            }
            ExprKind::Prefix { value, len } => {
                let (v, h, s) = self.expand(value)?;
                let kind = ExprKind::Prefix {
                    value: Box::new(v),
                    len: *len,
                };
                (kind, h + 1, s + 1)
            }
            ExprKind::Range { low, high } => {
                let (l, hl, sl) = self.expand(low)?;
                let (r, hr, sr) = self.expand(high)?;
                let kind = ExprKind::Range {
                    low: Box::new(l),
                    high: Box::new(r),
                };
                (kind, hl.max(hr) + 1, sl + sr + 1)
            }
            ExprKind::Set(elems) => {
                let mut out = Vec::with_capacity(elems.len());
                let (mut h, mut s) = (0, 1);
                for el in elems {
                    let (key, hk, sk) = self.expand(&el.key)?;
                    let data = match &el.data {
                        Some(d) => {
                            let (d, hd, sd) = self.expand(d)?;
                            h = h.max(hd);
                            s += sd;
                            Some(Box::new(d))
                        }
                        None => None,
                    };
                    h = h.max(hk);
                    s += sk + 1;
                    out.push(SetElem {
                        key,
                        data,
                        comment: el.comment.clone(),
                        timeout: el.timeout.clone(),
                        span: el.span,
                    });
                }
                (ExprKind::Set(out), h + 2, s)
            }
            ExprKind::Verdict(v) => {
                use crate::syntax::ast::VerdictKind;
                let v = match v.as_ref() {
                    VerdictKind::Jump(t) => VerdictKind::Jump(self.substitute(t)?),
                    VerdictKind::Goto(t) => VerdictKind::Goto(self.substitute(t)?),
                    other => other.clone(),
                };
                (ExprKind::Verdict(Box::new(v)), 2, 2)
            }
            other => (other.clone(), 1, 1),
        };
        if height > MAX_HEIGHT {
            return Err(Error::new(
                format!(
                    "expression too complex: with its variables, its tree is more than {MAX_HEIGHT} levels high"
                ),
                e.span,
            ));
        }
        Ok((Expr::new(kind, e.span), height, size))
    }

    /// Substitutes in every expression of a list: the list, the highest
    /// tree and the total size.
    fn expand_all(&mut self, items: &[Expr]) -> Result<(Vec<Expr>, usize, usize), Error> {
        let mut out = Vec::with_capacity(items.len());
        let (mut h, mut s) = (0, 0);
        for it in items {
            let (e, hi, si) = self.expand(it)?;
            h = h.max(hi);
            s += si;
            out.push(e);
        }
        Ok((out, h, s))
    }

    /// Counts `n` nodes of expansion against the budget.
    fn spend(&mut self, n: usize, at: &Expr) -> Result<(), Error> {
        if n > self.budget {
            return Err(Error::new(
                format!(
                    "variables expand to too much: more than {MAX_EXPANSION} expression nodes in the file"
                ),
                at.span,
            ));
        }
        self.budget -= n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::ast::{Ident, Span};

    fn word(w: &str) -> Expr {
        Expr::new(ExprKind::Word(w.into()), Span::new(0, 1))
    }

    fn var(v: &str) -> Expr {
        Expr::new(ExprKind::Variable(v.into()), Span::new(5, 6))
    }

    fn define(kind: DefineKind, name: &str, value: Option<Expr>) -> Define {
        Define {
            kind,
            name: Ident {
                name: name.into(),
                span: Span::new(2, 3),
            },
            value,
            span: Span::new(0, 9),
        }
    }

    #[test]
    fn scopes_nest_and_defines_do_not_shadow() {
        let mut s = Scopes::new();
        s.apply(&define(DefineKind::Define, "x", Some(word("a"))))
            .unwrap();
        s.push();
        let e = s
            .apply(&define(DefineKind::Define, "x", Some(word("b"))))
            .unwrap_err();
        assert_eq!(e.message, "redefinition of symbol 'x'");
        s.apply(&define(DefineKind::Redefine, "x", Some(word("b"))))
            .unwrap();
        assert_eq!(
            s.substitute(&var("x")).unwrap().kind,
            ExprKind::Word("b".into())
        );
        s.pop();
        // The value keeps the use's span.
        let got = s.substitute(&var("x")).unwrap();
        assert_eq!(
            (got.kind, got.span),
            (ExprKind::Word("a".into()), Span::new(5, 6))
        );
        s.apply(&define(DefineKind::Undefine, "x", None)).unwrap();
        assert_eq!(
            s.substitute(&var("x")).unwrap_err().message,
            "unknown identifier 'x'"
        );
        let e = s
            .apply(&define(DefineKind::Undefine, "x", None))
            .unwrap_err();
        assert_eq!(e.message, "undefined symbol 'x'");
    }

    #[test]
    fn doubling_definitions_hit_the_budget() {
        let mut s = Scopes::new();
        let set = |a: &str| {
            let el = |k| SetElem {
                key: k,
                data: None,
                comment: None,
                timeout: None,
                span: Span::new(0, 1),
            };
            Expr::new(ExprKind::Set(vec![el(var(a)), el(var(a))]), Span::new(0, 1))
        };
        s.apply(&define(DefineKind::Define, "v0", Some(word("1"))))
            .unwrap();
        let mut failed = None;
        for i in 1..64 {
            let d = define(
                DefineKind::Define,
                &format!("v{i}"),
                Some(set(&format!("v{}", i - 1))),
            );
            if let Err(e) = s.apply(&d) {
                failed = Some(e);
                break;
            }
        }
        let e = failed.expect("the budget stops the doubling");
        assert!(
            e.message.contains("expand to too much") || e.message.contains("too complex"),
            "{}",
            e.message
        );
    }
}
