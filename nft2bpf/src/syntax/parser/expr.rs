//! Expressions: selectors (`ip saddr`, `meta l4proto`, `@nh,72,8`) and
//! the values they are compared with, with nft's precedence: `<<` `>>`
//! bind tightest, then `&`, `^`, `|`, then prefixes (`/`) and ranges
//! (`-`), then concatenation (`.`); a list (`a, b`) only stands right of
//! a relation.
//!
//! Every function returns the tree with its height, so that
//! [`MAX_HEIGHT`] bounds trees of any shape, flat chains of operators
//! included.

use pktmatch::Span;

use super::{MAX_HEIGHT, Parser};
use crate::error::Error;
use crate::syntax::ast::*;
use crate::syntax::token::Tok;

/// An expression and the height of its tree.
type H = (Expr, usize);

/// Protocols whose fields are matched as `PROTO FIELD`, and which the
/// checks know.
pub(crate) const PAYLOAD_PROTOS: [&str; 9] = [
    "ether", "vlan", "ip", "ip6", "tcp", "udp", "th", "icmp", "icmpv6",
];

/// Keys nft allows without `meta` (its `meta_key_unqualified`).
pub(crate) const UNQUALIFIED_META: [&str; 22] = [
    "mark",
    "iif",
    "iifname",
    "iiftype",
    "oif",
    "oifname",
    "oiftype",
    "skuid",
    "skgid",
    "nftrace",
    "rtclassid",
    "ibriport",
    "obriport",
    "ibrname",
    "obrname",
    "pkttype",
    "cpu",
    "iifgroup",
    "oifgroup",
    "cgroup",
    "random",
    "ipsec",
];

/// Words that start an expression nft knows and we do not compile: the
/// rest of the rule is skipped and the checks refuse it by name.
const UNSUPPORTED_EXPRS: [&str; 25] = [
    "ct", "fib", "rt", "socket", "osf", "numgen", "jhash", "symhash", "ipsec", "exthdr", "hbh",
    "rt0", "rt2", "srh", "frag", "dst", "mh", "arp", "sctp", "dccp", "udplite", "igmp", "ah",
    "esp", "comp",
];

/// Words that start a statement and so never stand as a value.
const STATEMENT_WORDS: [&str; 26] = [
    "accept",
    "drop",
    "continue",
    "return",
    "jump",
    "goto",
    "counter",
    "limit",
    "quota",
    "log",
    "fwd",
    "comment",
    "reject",
    "queue",
    "dup",
    "notrack",
    "masquerade",
    "snat",
    "dnat",
    "redirect",
    "tproxy",
    "synproxy",
    "meter",
    "vmap",
    "map",
    "set",
];

impl Parser<'_> {
    /// Whether the next tokens start a selector (or an expression we
    /// refuse): what a match statement starts with.
    pub(super) fn at_selector(&self) -> bool {
        match self.tok() {
            Tok::Word(w) => {
                w == "meta"
                    || PAYLOAD_PROTOS.contains(&w.as_str())
                    || UNQUALIFIED_META.contains(&w.as_str())
                    || UNSUPPORTED_EXPRS.contains(&w.as_str())
            }
            Tok::At => self.at_raw(),
            Tok::LParen => true,
            _ => false,
        }
    }

    /// `@ll,` / `@nh,` / `@th,`: a raw payload, not a set.
    fn at_raw(&self) -> bool {
        matches!(&self.peek_nth(1).tok, Tok::Word(w) if matches!(w.as_str(), "ll" | "nh" | "th"))
            && self.peek_nth(2).tok == Tok::Comma
    }

    /// One selector: `PROTO FIELD`, `meta KEY`, an unqualified meta key,
    /// `@BASE,OFFSET,LEN`, or (skipping to the end of the statement) an
    /// expression we refuse.
    pub(super) fn selector(&mut self) -> Result<Expr, Error> {
        let start = self.peek().span;
        if *self.tok() == Tok::At {
            return self.raw_payload();
        }
        let word = self.keyword("a selector (`ip saddr`, `tcp dport`, `meta l4proto`, ...)")?;
        let w = word.name.as_str();
        if w == "meta" {
            let key = self.keyword("meta key")?;
            let span = start.to(key.span);
            return Ok(Expr::new(ExprKind::Meta { key }, span));
        }
        if UNQUALIFIED_META.contains(&w) {
            let span = word.span;
            return Ok(Expr::new(ExprKind::Meta { key: word }, span));
        }
        let unsupported =
            UNSUPPORTED_EXPRS.contains(&w) || (matches!(w, "ip" | "tcp") && self.at_word("option"));
        if unsupported {
            let mut what = word.name.clone();
            let mut span = word.span;
            if let Tok::Word(next) = self.tok().clone() {
                what = format!("{what} {next}");
                span = span.to(self.bump().span);
            }
            self.skip_statement(span);
            return Ok(Expr::new(
                ExprKind::Unsupported(Unsupported { what, span }),
                span,
            ));
        }
        if !PAYLOAD_PROTOS.contains(&w) {
            return Err(Error::new(
                format!(
                    "syntax error, unexpected `{w}`, expecting a selector (`ip saddr`, `tcp dport`, `meta l4proto`, ...)"
                ),
                word.span,
            ));
        }
        let field = self.keyword(&format!("a field of {w}"))?;
        let span = start.to(field.span);
        Ok(Expr::new(ExprKind::Payload { proto: word, field }, span))
    }

    /// `@BASE,OFFSET,LEN`.
    fn raw_payload(&mut self) -> Result<Expr, Error> {
        let start = self.expect(&Tok::At)?;
        let base = self.keyword("`ll`, `nh` or `th`")?;
        self.expect(&Tok::Comma)?;
        let offset = self.number("bit offset")?;
        self.expect(&Tok::Comma)?;
        let len = self.number("bit length")?;
        let span = start.to(len.span);
        Ok(Expr::new(ExprKind::Raw { base, offset, len }, span))
    }

    /// The left side of a match: selectors with bit operators,
    /// concatenated.
    pub(super) fn lhs(&mut self) -> Result<Expr, Error> {
        let (first, h) = self.lhs_or()?;
        if matches!(first.kind, ExprKind::Unsupported(_)) || *self.tok() != Tok::Dot {
            return Ok(first);
        }
        let mut parts = vec![first];
        let mut height = h;
        while self.eat(&Tok::Dot).is_some() {
            let (e, h) = self.lhs_or()?;
            if matches!(e.kind, ExprKind::Unsupported(_)) {
                return Ok(e);
            }
            height = height.max(h);
            parts.push(e);
        }
        self.concat(parts, height).map(|(e, _)| e)
    }

    /// A selector or parenthesised selector, then `& | ^ << >>` values.
    fn lhs_or(&mut self) -> Result<H, Error> {
        let (mut left, mut h) = match *self.tok() {
            Tok::LParen => {
                let open = self.bump().span;
                self.enter(open)?;
                let (e, h) = self.lhs_or()?;
                let close = self.expect(&Tok::RParen)?;
                self.leave();
                (Expr::new(e.kind, open.to(close)), h)
            }
            _ => (self.selector()?, 1),
        };
        if matches!(left.kind, ExprKind::Unsupported(_)) {
            return Ok((left, h));
        }
        while let Some(op) =
            self.bin_op(&[BinOp::Shl, BinOp::Shr, BinOp::And, BinOp::Xor, BinOp::Or])
        {
            self.bump();
            let (right, hr) = self.value_shift()?;
            (left, h) = self.binary(op, left, h, right, hr)?;
        }
        Ok((left, h))
    }

    /// The next token as one of the binary operators `ops`.
    fn bin_op(&self, ops: &[BinOp]) -> Option<BinOp> {
        let op = match self.tok() {
            Tok::Amp => BinOp::And,
            Tok::Pipe => BinOp::Or,
            Tok::Caret => BinOp::Xor,
            Tok::Shl => BinOp::Shl,
            Tok::Shr => BinOp::Shr,
            _ => return None,
        };
        ops.contains(&op).then_some(op)
    }

    /// Builds `left op right`, bounded in height.
    fn binary(&self, op: BinOp, left: Expr, hl: usize, right: Expr, hr: usize) -> Result<H, Error> {
        let span = left.span.to(right.span);
        let h = self.height(hl.max(hr) + 1, span)?;
        let kind = ExprKind::Binary {
            op,
            left: Box::new(left),
            right: Box::new(right),
        };
        Ok((Expr::new(kind, span), h))
    }

    /// Builds a concatenation.
    fn concat(&self, parts: Vec<Expr>, h: usize) -> Result<H, Error> {
        let span = parts[0].span.to(parts[parts.len() - 1].span);
        let h = self.height(h + 1, span)?;
        Ok((Expr::new(ExprKind::Concat(parts), span), h))
    }

    /// `h`, or an error past [`MAX_HEIGHT`].
    fn height(&self, h: usize, span: Span) -> Result<usize, Error> {
        if h > MAX_HEIGHT {
            return Err(Error::new(
                format!("expression too complex: its tree is more than {MAX_HEIGHT} levels high"),
                span,
            ));
        }
        Ok(h)
    }

    /// A value: a number, word, string, address, variable or
    /// parenthesised value.
    fn value_primary(&mut self) -> Result<H, Error> {
        let t = self.peek().clone();
        let kind = match t.tok {
            Tok::Number(n) => ExprKind::Number(n),
            Tok::Word(w) if self.in_element_key || !STATEMENT_WORDS.contains(&w.as_str()) => {
                ExprKind::Word(w)
            }
            Tok::Quoted(s) => ExprKind::Quoted(s),
            Tok::Addr(a) => ExprKind::Addr(a),
            Tok::Dollar => return Ok((self.variable()?, 1)),
            Tok::LParen => {
                let open = self.bump().span;
                self.enter(open)?;
                let (e, h) = self.value_or()?;
                let close = self.expect(&Tok::RParen)?;
                self.leave();
                return Ok((Expr::new(e.kind, open.to(close)), h));
            }
            _ => return Err(self.unexpected("a value")),
        };
        self.bump();
        Ok((Expr::new(kind, t.span), 1))
    }

    /// `$NAME`.
    pub(super) fn variable(&mut self) -> Result<Expr, Error> {
        let start = self.expect(&Tok::Dollar)?;
        let name = self.keyword("variable name")?;
        Ok(Expr::new(
            ExprKind::Variable(name.name),
            start.to(name.span),
        ))
    }

    /// Values with `<<` and `>>`.
    fn value_shift(&mut self) -> Result<H, Error> {
        self.value_level(&[BinOp::Shl, BinOp::Shr], Self::value_primary)
    }

    /// ... and `&`.
    fn value_and(&mut self) -> Result<H, Error> {
        self.value_level(&[BinOp::And], Self::value_shift)
    }

    /// ... and `^`.
    fn value_xor(&mut self) -> Result<H, Error> {
        self.value_level(&[BinOp::Xor], Self::value_and)
    }

    /// ... and `|`: nft's `basic_rhs_expr`.
    fn value_or(&mut self) -> Result<H, Error> {
        self.value_level(&[BinOp::Or], Self::value_xor)
    }

    /// A left-associative chain of `ops` over `operand`.
    fn value_level(
        &mut self,
        ops: &[BinOp],
        operand: fn(&mut Self) -> Result<H, Error>,
    ) -> Result<H, Error> {
        let (mut left, mut h) = operand(self)?;
        while let Some(op) = self.bin_op(ops) {
            self.bump();
            let (right, hr) = operand(self)?;
            (left, h) = self.binary(op, left, h, right, hr)?;
        }
        Ok((left, h))
    }

    /// A value, prefix (`VALUE/NUM`) or range (`LOW-HIGH`).
    fn value_multiton(&mut self) -> Result<H, Error> {
        let (value, h) = self.value_or()?;
        if *self.tok() == Tok::Slash && matches!(self.peek_nth(1).tok, Tok::Number(_)) {
            self.bump();
            let len = self.number("prefix length")?;
            let span = value.span.to(len.span);
            let h = self.height(h + 1, span)?;
            let kind = ExprKind::Prefix {
                value: Box::new(value),
                len,
            };
            return Ok((Expr::new(kind, span), h));
        }
        if self.eat(&Tok::Dash).is_some() {
            let (high, hh) = self.value_or()?;
            let span = value.span.to(high.span);
            let h = self.height(h.max(hh) + 1, span)?;
            let kind = ExprKind::Range {
                low: Box::new(value),
                high: Box::new(high),
            };
            return Ok((Expr::new(kind, span), h));
        }
        Ok((value, h))
    }

    /// Values, prefixes and ranges, concatenated: nft's `concat_rhs_expr`.
    fn value_concat(&mut self) -> Result<H, Error> {
        let (first, h) = self.value_multiton()?;
        if *self.tok() != Tok::Dot {
            return Ok((first, h));
        }
        let mut parts = vec![first];
        let mut height = h;
        while self.eat(&Tok::Dot).is_some() {
            let (e, h) = self.value_multiton()?;
            height = height.max(h);
            parts.push(e);
        }
        self.concat(parts, height)
    }

    /// The right side of a relation: a set, `@set`, a value (range,
    /// prefix, concatenation), or a list `a, b, c`.
    pub(super) fn rhs(&mut self) -> Result<Expr, Error> {
        match *self.tok() {
            Tok::LBrace => return self.set_expr().map(|(e, _)| e),
            Tok::At => return self.set_ref(),
            _ => {}
        }
        let (first, h) = self.value_concat()?;
        if *self.tok() != Tok::Comma {
            return Ok(first);
        }
        self.list(first, h).map(|(e, _)| e)
    }

    /// `FIRST, B, C...` (values without ranges or prefixes).
    fn list(&mut self, first: Expr, h: usize) -> Result<H, Error> {
        let mut items = vec![first];
        let mut height = h;
        while self.eat(&Tok::Comma).is_some() {
            let (e, h) = self.value_or()?;
            height = height.max(h);
            items.push(e);
        }
        let span = items[0].span.to(items[items.len() - 1].span);
        let h = self.height(height + 1, span)?;
        Ok((Expr::new(ExprKind::List(items), span), h))
    }

    /// The mask after `VALUE /`: one value or a list of them.
    pub(super) fn flag_mask(&mut self) -> Result<Expr, Error> {
        let (first, h) = self.value_or()?;
        if *self.tok() != Tok::Comma {
            return Ok(first);
        }
        self.list(first, h).map(|(e, _)| e)
    }

    /// A time: a time string (`30s`, `1m30s`, `500ms`) or a number of
    /// seconds, as written (the checks read it).
    pub(super) fn time(&mut self, what: &str) -> Result<Ident, Error> {
        match self.tok().clone() {
            Tok::Word(w) => Ok(Ident {
                name: w,
                span: self.bump().span,
            }),
            Tok::Number(n) => Ok(Ident {
                name: n.to_string(),
                span: self.bump().span,
            }),
            _ => Err(self.unexpected(what)),
        }
    }

    /// `@NAME`.
    pub(super) fn set_ref(&mut self) -> Result<Expr, Error> {
        let start = self.expect(&Tok::At)?;
        let name = self.keyword("set name")?;
        Ok(Expr::new(ExprKind::SetRef(name.name), start.to(name.span)))
    }

    /// A `define` value: a value, list, set or `@set`, `{}` or `-N`.
    pub(super) fn initializer(&mut self) -> Result<Expr, Error> {
        if *self.tok() == Tok::LBrace && self.peek_nth(1).tok == Tok::RBrace {
            let open = self.bump().span;
            let close = self.bump().span;
            return Ok(Expr::new(ExprKind::Set(Vec::new()), open.to(close)));
        }
        if *self.tok() == Tok::Dash {
            let minus = self.bump().span;
            let n = self.number("number")?;
            return Ok(Expr::new(ExprKind::Negative(n.value), minus.to(n.span)));
        }
        self.rhs()
    }

    /// A set's elements in braces, or a variable.
    pub(super) fn set_or_variable(&mut self) -> Result<Expr, Error> {
        match *self.tok() {
            Tok::Dollar => self.variable(),
            _ => self.set_expr().map(|(e, _)| e),
        }
    }

    /// `{ ELEMENT, ... }`: newlines may stand around elements, a comma may
    /// end the list.
    pub(super) fn set_expr(&mut self) -> Result<H, Error> {
        let open = self.expect(&Tok::LBrace)?;
        self.enter(open)?;
        let mut elems = Vec::new();
        let mut height = 0;
        loop {
            self.skip_newlines();
            if *self.tok() == Tok::RBrace && !elems.is_empty() {
                break;
            }
            let (e, h) = self.set_elem()?;
            height = height.max(h);
            elems.push(e);
            self.skip_newlines();
            if self.eat(&Tok::Comma).is_none() {
                break;
            }
        }
        self.skip_newlines();
        let close = self.expect(&Tok::RBrace)?;
        self.leave();
        let span = open.to(close);
        let h = self.height(height + 1, span)?;
        Ok((Expr::new(ExprKind::Set(elems), span), h))
    }

    /// One element: a nested set, or a key with an optional comment and
    /// an optional `: DATA`.
    fn set_elem(&mut self) -> Result<(SetElem, usize), Error> {
        let lone = self.lone_value();
        let (key, mut h) = match (lone, self.tok()) {
            (Some(key), _) => (key, 1),
            (None, Tok::LBrace) => self.set_expr()?,
            (None, _) => {
                let outer = std::mem::replace(&mut self.in_element_key, true);
                let key = self.value_concat();
                self.in_element_key = outer;
                key?
            }
        };
        let mut span = key.span;
        let mut comment = None;
        let mut timeout = None;
        loop {
            if self.eat_word("comment").is_some() {
                let c = self.quoted("comment")?;
                span = span.to(c.span);
                comment = Some(Box::new(c));
            } else if self.eat_word("timeout").is_some() {
                let t = self.time("timeout")?;
                span = span.to(t.span);
                timeout = Some(Box::new(t));
            } else {
                break;
            }
        }
        let mut data = None;
        if self.eat(&Tok::Colon).is_some() {
            let d = match self.verdict()? {
                Some(v) => Expr::new(ExprKind::Verdict(Box::new(v.kind)), v.span),
                None => {
                    let (d, hd) = self.value_concat()?;
                    h = h.max(hd);
                    d
                }
            };
            span = span.to(d.span);
            data = Some(Box::new(d));
        }
        Ok((
            SetElem {
                key,
                data,
                comment,
                timeout,
                span,
            },
            h + 1,
        ))
    }

    /// A number or an address standing alone before what ends a key (a
    /// `,`, `}`, newline or `:`), taken as `value_concat` would take it:
    /// the short way for the million plain elements of a large set.
    fn lone_value(&mut self) -> Option<Expr> {
        let kind = match self.tok() {
            Tok::Number(n) => ExprKind::Number(*n),
            Tok::Addr(a) => ExprKind::Addr(*a),
            _ => return None,
        };
        let ends = matches!(
            self.peek_nth(1).tok,
            Tok::Comma | Tok::RBrace | Tok::Newline | Tok::Colon
        );
        ends.then(|| Expr::new(kind, self.bump().span))
    }

    /// A verdict, if one comes next.
    pub(super) fn verdict(&mut self) -> Result<Option<Verdict>, Error> {
        let kind = match self.word() {
            Some("accept") => VerdictKind::Accept,
            Some("drop") => VerdictKind::Drop,
            Some("continue") => VerdictKind::Continue,
            Some("return") => VerdictKind::Return,
            Some(w @ ("jump" | "goto")) => {
                let jump = w == "jump";
                let start = self.bump().span;
                let target = match self.tok().clone() {
                    Tok::Word(w) => Expr::new(ExprKind::Word(w), self.bump().span),
                    Tok::Dollar => self.variable()?,
                    _ => return Err(self.unexpected("chain name")),
                };
                let span = start.to(target.span);
                let kind = if jump {
                    VerdictKind::Jump(target)
                } else {
                    VerdictKind::Goto(target)
                };
                return Ok(Some(Verdict { kind, span }));
            }
            _ => return Ok(None),
        };
        let span = self.bump().span;
        Ok(Some(Verdict { kind, span }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SourceMap;
    use crate::syntax::include::MemLoader;
    use crate::syntax::lexer::tokenize;

    /// `f` run by a parser over the tokens of `text`, which starts at
    /// `base`.
    fn with_parser<T>(text: &str, base: usize, f: impl FnOnce(&mut Parser) -> T) -> T {
        let mut map = SourceMap::new();
        let mut loader = MemLoader::new();
        let mut p = Parser {
            map: &mut map,
            loader: &mut loader,
            frames: vec![super::super::Frame {
                toks: tokenize(text, base).expect("tokens"),
                pos: 0,
                identity: None,
                path: None,
            }],
            nesting: 0,
            in_element_key: true,
        };
        f(&mut p)
    }

    /// An element's key is what the general rules read, whether the
    /// short way for a lone number or address takes it or not.
    #[test]
    fn a_lone_value_is_the_key_value_concat_reads() {
        for key in [
            "10.0.0.1",
            "22",
            "0x16",
            "fe80::1",
            "00:11:22:33:44:55",
            "10.0.0.0/8",
            "22-80",
            "10.0.0.1 . 22",
            "1 << 2",
            "1 | 2",
            "ssh",
            "\"eth0\"",
        ] {
            let general = with_parser(key, 2, |p| p.value_concat().expect("a value").0);
            for end in ["}", ", 1 }", " : accept }", "\n}"] {
                let set = format!("{{ {key}{end}");
                let (set, _) = with_parser(&set, 0, |p| p.set_expr().expect("a set"));
                let ExprKind::Set(elems) = set.kind else {
                    panic!("{set:?}")
                };
                assert_eq!(elems[0].key, general, "{key}{end}");
            }
        }
    }
}
