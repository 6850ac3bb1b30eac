//! The grammar of libpcap's `grammar.y`, as recursive descent over tokens.
//!
//! Where yacc resolves a choice by lookahead (a bare operand after `and`
//! is an `id` that inherits the previous qualifier; otherwise a `term`),
//! we try the `id` reading first and fall back to the `term` reading.
//! `and` and `or` have the same precedence and associate to the left.
//!
//! Hostile input is bounded: the parser refuses expressions nested more
//! than [`MAX_NESTING`] levels (parentheses, `not`, unary minus, `^`,
//! `[]`) and trees more than [`MAX_HEIGHT`] nodes high (a chain `a or b
//! or ...` is a tree one level higher per operator), so that it and
//! every later pass, all recursive over the tree, run in bounded stack.

use crate::error::CompileError;
use crate::syntax::ast::*;
use crate::syntax::lexer::{Tok, Token, tokenize};

/// How deep parentheses, `not`, unary minus, `^` and `[]` may nest.
/// libpcap's parser runs out of stack ("memory exhausted") at a few
/// thousand levels.
pub const MAX_NESTING: usize = 1000;

/// How high the syntax tree may be, counting every operator node: a chain
/// `a or b or c` is a tree one level higher per operator, and the checks
/// and the lowering recurse over it, as over its arithmetic.
pub const MAX_HEIGHT: usize = 2000;

/// How many tokens the parser may read again after a failed reading
/// (a `(` is tried as a boolean expression, then as arithmetic): this
/// many, plus [`REPARSE_PER_TOKEN`] per token of the expression. Filters
/// nested around arithmetic deep and long at once would otherwise take
/// time quadratic in their length; no filter written by hand comes near.
pub const REPARSE_BUDGET: usize = 1_000_000;

/// See [`REPARSE_BUDGET`].
pub const REPARSE_PER_TOKEN: usize = 16;

/// Parses an expression; `Ok(None)` for the empty expression (accept all).
///
/// Expressions nested deeper than [`MAX_NESTING`] or with a tree higher
/// than [`MAX_HEIGHT`] are refused, the caret on the token that crosses
/// the limit.
pub fn parse_expr(src: &str) -> Result<Option<Expr>, CompileError> {
    let toks = tokenize(src)?;
    if toks.is_empty() {
        return Ok(None);
    }
    let mut p = Parser {
        src,
        toks,
        pos: 0,
        cur: None,
        end: src.len(),
        furthest: None,
        depth: 0,
        height: 0,
        limit: None,
        reparsed: 0,
    };
    let e = p.expr();
    // A limit ends the parse: no other reading gets further.
    if let Some(e) = p.limit.take() {
        return Err(e);
    }
    let e = e.map_err(|e| p.worst(e));
    let e = match e {
        Ok(_) if p.pos < p.toks.len() => {
            let e = p.syntax();
            Err(p.worst(e))
        }
        e => e,
    };
    e.map(Some).map_err(|e| missing_parens(src, &p, e))
}

/// An error at the end of an expression that closing its open
/// parentheses would make whole says so.
fn missing_parens(src: &str, p: &Parser<'_>, e: CompileError) -> CompileError {
    let open = p.unclosed();
    if open == 0 || e.span.start < src.len() {
        return e;
    }
    let closed = format!("{src}{}", ")".repeat(open));
    if parse_expr(&closed).is_ok() {
        return CompileError::new("syntax error: missing ')'", e.span);
    }
    e
}

type R<T> = Result<T, CompileError>;

struct Parser<'s> {
    /// The expression, to quote in syntax errors.
    src: &'s str,
    toks: Vec<Token>,
    pos: usize,
    /// The qualifier a bare operand inherits; `None` is libpcap's `qerr`.
    cur: Option<Qual>,
    end: usize,
    /// The syntax error that got furthest, reported after backtracking.
    furthest: Option<CompileError>,
    /// How many nesting constructs enclose the current token.
    depth: usize,
    /// The height of the tree (syntax or arithmetic) parsed last.
    height: usize,
    /// The limit error, once a limit is crossed: backtracking must not
    /// try another reading (the error is final).
    limit: Option<CompileError>,
    /// Tokens read by readings that failed and were read again.
    reparsed: usize,
}

const DQUALS: &[&str] = &["src", "dst", "addr1", "addr2", "addr3", "addr4", "ra", "ta"];
const AQUALS: &[&str] = &["host", "net", "port", "portrange"];

fn pname(kw: &str) -> Option<Proto> {
    use Proto::*;
    Some(match kw {
        "link" => Link,
        "ip" => Ip,
        "arp" => Arp,
        "rarp" => Rarp,
        "sctp" => Sctp,
        "tcp" => Tcp,
        "udp" => Udp,
        "icmp" => Icmp,
        "igmp" => Igmp,
        "igrp" => Igrp,
        "pim" => Pim,
        "vrrp" => Vrrp,
        "carp" => Carp,
        "radio" => Radio,
        "ip6" => Ip6,
        "icmp6" => Icmp6,
        "ah" => Ah,
        "esp" => Esp,
        "atalk" => Atalk,
        "aarp" => Aarp,
        "decnet" => Decnet,
        "lat" => Lat,
        "sca" => Sca,
        "moprc" => Moprc,
        "mopdl" => Mopdl,
        "iso" => Iso,
        "esis" => Esis,
        "isis" => Isis,
        "l1" => L1,
        "l2" => L2,
        "iih" => Iih,
        "lsp" => Lsp,
        "snp" => Snp,
        "csnp" => Csnp,
        "psnp" => Psnp,
        "clnp" => Clnp,
        "stp" => Stp,
        "ipx" => Ipx,
        "netbeui" => Netbeui,
        _ => return None,
    })
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n).map(|t| &t.tok)
    }

    fn kw(&self) -> Option<&'static str> {
        match self.peek() {
            Some(Tok::Kw(k)) => Some(k),
            _ => None,
        }
    }

    fn is_kw(&self, k: &str) -> bool {
        self.kw() == Some(k)
    }

    fn is_sym(&self, s: &str) -> bool {
        matches!(self.peek(), Some(Tok::Sym(x)) if *x == s)
    }

    fn span_here(&self) -> Span {
        self.toks
            .get(self.pos)
            .map_or(Span::new(self.end, self.end), |t| t.span)
    }

    fn prev_end(&self) -> usize {
        self.pos
            .checked_sub(1)
            .and_then(|i| self.toks.get(i))
            .map_or(0, |t| t.span.end)
    }

    fn start(&self) -> usize {
        self.span_here().start
    }

    /// Steps over the current token; returns where it was.
    fn bump(&mut self) -> Span {
        let span = self.toks[self.pos].span;
        self.pos += 1;
        span
    }

    /// A syntax error at the current token, saying what it found there.
    fn syntax(&self) -> CompileError {
        let found = match self.toks.get(self.pos) {
            Some(t) => format!("unexpected '{}'", self.text(t.span)),
            None => "the expression ends too soon".to_string(),
        };
        CompileError::new(format!("syntax error: {found}"), self.span_here())
    }

    /// A syntax error at the token in `span`, already stepped over.
    fn syntax_at(&self, span: Span) -> CompileError {
        let word = self.text(span);
        CompileError::new(format!("syntax error: unexpected '{word}'"), span)
    }

    /// The source text of `span` (tokens start and end on characters).
    fn text(&self, span: Span) -> &str {
        self.src.get(span.start..span.end).unwrap_or_default()
    }

    /// How many more parentheses open than close in the whole expression.
    fn unclosed(&self) -> usize {
        let count = |s: &'static str| self.toks.iter().filter(|t| t.tok == Tok::Sym(s)).count();
        count("(").saturating_sub(count(")"))
    }

    /// Of `e` and the furthest error seen while backtracking, the one
    /// further right: that is where the input stopped making sense.
    fn worst(&mut self, e: CompileError) -> CompileError {
        match self.furthest.take() {
            Some(f) if f.span.start > e.span.start => f,
            _ => e,
        }
    }

    fn expect_sym(&mut self, s: &str) -> R<Span> {
        if self.is_sym(s) {
            Ok(self.bump())
        } else {
            Err(self.syntax())
        }
    }

    fn num(&mut self) -> R<(u32, Span)> {
        match self.peek() {
            Some(Tok::Num(n)) => {
                let n = *n;
                Ok((n, self.bump()))
            }
            _ => Err(self.syntax()),
        }
    }

    /// Runs `f`; on failure restores the position and qualifier state.
    /// A crossed limit is no failure to recover from: that is `Err`.
    fn attempt<T>(&mut self, f: impl FnOnce(&mut Self) -> R<T>) -> R<Option<T>> {
        let (pos, cur, depth) = (self.pos, self.cur, self.depth);
        match f(self) {
            Ok(v) => Ok(Some(v)),
            Err(e) if self.limit.is_some() => Err(e),
            Err(e) => {
                self.reparsed += self.pos.saturating_sub(pos);
                let budget = REPARSE_BUDGET + REPARSE_PER_TOKEN * self.toks.len();
                if self.reparsed > budget {
                    // Where the reading that failed began.
                    let at = self.toks.get(pos).map_or(self.span_here(), |t| t.span);
                    let e = CompileError::new(
                        "expression too complex to parse: parentheses nested too deep around too long an expression",
                        at,
                    );
                    self.limit = Some(e.clone());
                    return Err(e);
                }
                let e = self.worst(e);
                self.furthest = Some(e);
                self.pos = pos;
                self.cur = cur;
                self.depth = depth;
                Ok(None)
            }
        }
    }

    /// Runs `f` one nesting level deeper: the current token opens the
    /// level (`(`, `not`, `-`, `[`, `^`...). Refuses the level past
    /// [`MAX_NESTING`].
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> R<T>) -> R<T> {
        if self.depth >= MAX_NESTING {
            let e = CompileError::new(
                format!("expression too deeply nested (more than {MAX_NESTING} levels)"),
                self.span_here(),
            );
            self.limit = Some(e.clone());
            return Err(e);
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    /// Records that a node over children of heights `children` was just
    /// built by the operator at `op`; refuses a tree past [`MAX_HEIGHT`].
    fn grow(&mut self, children: usize, op: Span) -> R<()> {
        self.height = children + 1;
        if self.height > MAX_HEIGHT {
            let e = CompileError::new(
                format!(
                    "expression too complex (more than {MAX_HEIGHT} levels of operators; \
                     each operator of a chain adds one)"
                ),
                op,
            );
            self.limit = Some(e.clone());
            return Err(e);
        }
        Ok(())
    }

    fn at_expr_end(&self) -> bool {
        matches!(
            self.peek(),
            None | Some(Tok::Kw("and" | "or")) | Some(Tok::Sym(")"))
        )
    }

    // expr: term | expr and term | expr and id | expr or term | expr or id
    fn expr(&mut self) -> R<Expr> {
        let mut left = self.term()?;
        while let Some(op) = self.kw().filter(|k| *k == "and" || *k == "or") {
            let hl = self.height;
            let op_span = self.bump();
            let right = match self.cur {
                Some(q) => self.attempt(|p| {
                    let id = p.id(q)?;
                    if p.at_expr_end() {
                        Ok(id)
                    } else {
                        Err(p.syntax())
                    }
                })?,
                None => None,
            };
            let right = match right {
                Some(r) => r,
                None => self.term()?,
            };
            self.grow(hl.max(self.height), op_span)?;
            left = if op == "and" {
                Expr::And(Box::new((left, right)))
            } else {
                Expr::Or(Box::new((left, right)))
            };
        }
        Ok(left)
    }

    // term: rterm | not term
    fn term(&mut self) -> R<Expr> {
        if self.is_kw("not") || self.is_sym("!") {
            let op = self.span_here();
            let t = self.nested(|p| {
                p.bump();
                p.term()
            })?;
            let span = Span::new(op.start, self.prev_end());
            self.grow(self.height, op)?;
            return Ok(Expr::Not(Box::new(t), span));
        }
        self.rterm()
    }

    /// A primitive from `start` to here; the height of its arithmetic,
    /// if any, is already in `self.height`.
    fn prim(&mut self, p: Primitive, start: usize) -> Expr {
        if !matches!(p, Primitive::Relation(..)) {
            self.height = 1;
        }
        Expr::Prim(p, Span::new(start, self.prev_end()))
    }

    fn rterm(&mut self) -> R<Expr> {
        let start = self.start();
        if self.is_sym("(") {
            // `( expr )`, else an arithmetic relation starting with `(`.
            let saved = self.cur;
            let inner = self.attempt(|p| {
                p.nested(|p| {
                    p.bump();
                    let e = p.expr()?;
                    p.expect_sym(")")?;
                    Ok(e)
                })
            })?;
            if let Some(e) = inner {
                self.cur = saved;
                return Ok(e);
            }
            return self.relation(start);
        }
        let tok = self.peek().cloned().ok_or_else(|| self.syntax())?;
        match tok {
            Tok::Num(_) | Tok::Sym("-") | Tok::Kw("len") => self.relation(start),
            Tok::Kw(k) => {
                if let Some(p) = pname(k) {
                    match self.peek_at(1) {
                        Some(Tok::Sym("[")) => self.relation(start),
                        Some(Tok::Kw(n)) if Self::starts_head(n) => self.head_id(start),
                        Some(Tok::Kw("broadcast" | "multicast")) => self.other(start),
                        Some(Tok::Kw("type" | "subtype" | "dir")) => self.other(start),
                        _ => {
                            self.bump();
                            self.cur = None;
                            Ok(self.prim(Primitive::Proto(p), start))
                        }
                    }
                } else if Self::starts_head(k) {
                    self.head_id(start)
                } else {
                    self.other(start)
                }
            }
            _ => Err(self.syntax()),
        }
    }

    fn starts_head(k: &str) -> bool {
        DQUALS.contains(&k)
            || AQUALS.contains(&k)
            || matches!(k, "proto" | "protochain" | "gateway")
    }

    // head id
    fn head_id(&mut self, start: usize) -> R<Expr> {
        let mut q = Qual::default();
        if let Some(p) = self.kw().and_then(pname) {
            self.bump();
            q.proto = Some(p);
        }
        match self.kw() {
            Some("proto") => {
                self.bump();
                q.kind = Kind::Proto;
            }
            Some("protochain") => {
                self.bump();
                q.kind = Kind::ProtoChain;
            }
            Some("gateway") => {
                self.bump();
                q.kind = Kind::Gateway;
            }
            _ => {
                let mut any = false;
                if let Some(d) = self.kw().filter(|k| DQUALS.contains(k)) {
                    self.bump();
                    any = true;
                    q.dir = match d {
                        "src" | "dst" => {
                            let other = if d == "src" { "dst" } else { "src" };
                            match self.kw() {
                                Some(c @ ("or" | "and")) => {
                                    self.bump();
                                    if !self.is_kw(other) {
                                        return Err(self.syntax());
                                    }
                                    self.bump();
                                    if c == "or" {
                                        Dir::SrcOrDst
                                    } else {
                                        Dir::SrcAndDst
                                    }
                                }
                                _ if d == "src" => Dir::Src,
                                _ => Dir::Dst,
                            }
                        }
                        "addr1" => Dir::Addr(1),
                        "addr2" => Dir::Addr(2),
                        "addr3" => Dir::Addr(3),
                        "addr4" => Dir::Addr(4),
                        "ra" => Dir::Ra,
                        _ => Dir::Ta,
                    };
                }
                if let Some(a) = self.kw().filter(|k| AQUALS.contains(k)) {
                    self.bump();
                    any = true;
                    q.kind = match a {
                        "host" => Kind::Host,
                        "net" => Kind::Net,
                        "port" => Kind::Port,
                        _ => Kind::PortRange,
                    };
                }
                if !any {
                    return Err(self.syntax());
                }
            }
        }
        self.cur = Some(q);
        let _ = start;
        self.id(q)
    }

    // id: nid | pnum | paren pid ')'
    fn id(&mut self, q: Qual) -> R<Expr> {
        let start = self.start();
        if self.is_sym("(") {
            if let Some(n) = self.attempt(|p| p.pnum())? {
                return Ok(self.qualified(q, Value::Num(n.0), n.1, start));
            }
            return self.nested(|p| p.pid(q));
        }
        if let Some(Tok::Num(_)) = self.peek() {
            let (n, s) = self.pnum()?;
            return Ok(self.qualified(q, Value::Num(n), s, start));
        }
        self.nid(q)
    }

    // paren pid ')', at the '('.
    fn pid(&mut self, q: Qual) -> R<Expr> {
        {
            self.bump();
            // pid: the first operand is a nid or a pnum, the rest are ids.
            let mut left = match self.peek() {
                Some(Tok::Num(_)) | Some(Tok::Sym("(")) => {
                    let (n, s) = self.pnum()?;
                    self.qualified(q, Value::Num(n), s, self.start())
                }
                _ => self.nid(q)?,
            };
            if !(self.is_kw("and") || self.is_kw("or")) && matches!(left, Expr::Prim(_, _)) {
                // `(5)` alone is a pnum, handled above; `(b)` is fine.
            }
            while let Some(op) = self.kw().filter(|k| *k == "and" || *k == "or") {
                let hl = self.height;
                let op_span = self.bump();
                let right = self.id(q)?;
                self.grow(hl.max(self.height), op_span)?;
                left = if op == "and" {
                    Expr::And(Box::new((left, right)))
                } else {
                    Expr::Or(Box::new((left, right)))
                };
            }
            self.expect_sym(")")?;
            Ok(left)
        }
    }

    fn qualified(&mut self, qual: Qual, value: Value, value_span: Span, _start: usize) -> Expr {
        self.height = 1;
        Expr::Prim(
            Primitive::Qualified {
                qual,
                value,
                value_span,
            },
            value_span,
        )
    }

    // pnum: NUM | paren pnum ')'
    fn pnum(&mut self) -> R<(u32, Span)> {
        if self.is_sym("(") {
            return self.nested(|p| {
                let start = p.bump().start;
                let (n, _) = p.pnum()?;
                let end = p.expect_sym(")")?.end;
                Ok((n, Span::new(start, end)))
            });
        }
        self.num()
    }

    fn nid(&mut self, q: Qual) -> R<Expr> {
        let start = self.start();
        let tok = self.peek().cloned().ok_or_else(|| self.syntax())?;
        let value = match tok {
            Tok::Kw("not") | Tok::Sym("!") => {
                let op = self.span_here();
                let inner = self.nested(|p| {
                    p.bump();
                    p.id(q)
                })?;
                let span = Span::new(start, self.prev_end());
                self.grow(self.height, op)?;
                return Ok(Expr::Not(Box::new(inner), span));
            }
            Tok::Id(s) => {
                self.bump();
                Value::Name(s)
            }
            Tok::Hid(s) => {
                self.bump();
                if self.is_sym("/") {
                    self.bump();
                    Value::Ipv4Prefix(s, self.number()?)
                } else if self.is_kw("mask") {
                    self.bump();
                    match self.peek().cloned() {
                        Some(Tok::Hid(m)) => {
                            self.bump();
                            Value::Ipv4Mask(s, m)
                        }
                        _ => return Err(self.syntax()),
                    }
                } else {
                    Value::Ipv4(s)
                }
            }
            Tok::Hid6(a) => {
                self.bump();
                if self.is_sym("/") {
                    self.bump();
                    Value::Ipv6Prefix(a, self.num()?.0)
                } else {
                    Value::Ipv6(a)
                }
            }
            Tok::Eid(m) => {
                self.bump();
                Value::Mac(m)
            }
            Tok::Aid(a) => {
                self.bump();
                Value::Arcnet(a)
            }
            _ => return Err(self.syntax()),
        };
        let span = Span::new(start, self.prev_end());
        Ok(self.qualified(q, value, span, start))
    }

    fn relation(&mut self, start: usize) -> R<Expr> {
        let lhs = self.arith(0)?;
        let hl = self.height;
        let op = match self.peek() {
            Some(Tok::Sym(">")) => RelOp::Gt,
            Some(Tok::Sym(">=")) => RelOp::Ge,
            Some(Tok::Sym("=")) => RelOp::Eq,
            Some(Tok::Sym("<=")) => RelOp::Le,
            Some(Tok::Sym("<")) => RelOp::Lt,
            Some(Tok::Sym("!=")) => RelOp::Ne,
            _ => return Err(self.syntax()),
        };
        self.bump();
        let rhs = self.arith(0)?;
        // The primitive over its two trees.
        self.height = hl.max(self.height) + 1;
        self.cur = None;
        Ok(self.prim(Primitive::Relation(op, lhs, rhs), start))
    }

    fn binop(&self) -> Option<(ArithOp, u8)> {
        Some(match self.peek()? {
            Tok::Sym("|") => (ArithOp::Or, 1),
            Tok::Sym("&") => (ArithOp::And, 2),
            Tok::Sym("<<") => (ArithOp::Shl, 3),
            Tok::Sym(">>") => (ArithOp::Shr, 3),
            Tok::Sym("+") => (ArithOp::Add, 4),
            Tok::Sym("-") => (ArithOp::Sub, 4),
            Tok::Sym("*") => (ArithOp::Mul, 5),
            Tok::Sym("/") => (ArithOp::Div, 5),
            Tok::Sym("%") => (ArithOp::Mod, 5),
            // `^` has no precedence in grammar.y, so yacc always shifts it:
            // it binds its left operand tightest and takes all to its right.
            Tok::Sym("^") => (ArithOp::Xor, 0),
            _ => return None,
        })
    }

    /// Precedence climbing; `min` is the lowest level this call may take.
    fn arith(&mut self, min: u8) -> R<Arith> {
        let mut lhs = self.unary()?;
        while let Some((op, prec)) = self.binop() {
            let hl = self.height;
            if op == ArithOp::Xor {
                // Right-recursive: a chain of `^` nests.
                let op_span = self.span_here();
                let rhs = self.nested(|p| {
                    p.bump();
                    p.arith(0)
                })?;
                self.grow(hl.max(self.height), op_span)?;
                lhs = Arith::Binary(op, Box::new(lhs), Box::new(rhs));
                continue;
            }
            if prec < min {
                break;
            }
            let op_span = self.bump();
            let rhs = self.arith(prec + 1)?;
            self.grow(hl.max(self.height), op_span)?;
            lhs = Arith::Binary(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> R<Arith> {
        let start = self.start();
        match self.peek().cloned() {
            Some(Tok::Sym("-")) => {
                let op = self.span_here();
                let a = self.nested(|p| {
                    p.bump();
                    p.arith(6)
                })?;
                self.grow(self.height, op)?;
                Ok(Arith::Neg(Box::new(a), Span::new(start, self.prev_end())))
            }
            Some(Tok::Num(n)) => {
                self.height = 1;
                Ok(Arith::Num(n, self.bump()))
            }
            Some(Tok::Kw("len")) => {
                self.height = 1;
                Ok(Arith::Len(self.bump()))
            }
            Some(Tok::Sym("(")) => self.nested(|p| {
                p.bump();
                let a = p.arith(0)?;
                p.expect_sym(")")?;
                Ok(a)
            }),
            Some(Tok::Kw(k)) if pname(k).is_some() => {
                let proto = pname(k).unwrap_or(Proto::Link);
                let op = self.bump();
                let index = self.nested(|p| {
                    p.expect_sym("[")?;
                    p.arith(0)
                })?;
                self.grow(self.height, op)?;
                let size = if self.is_sym(":") {
                    self.bump();
                    self.num()?.0
                } else {
                    1
                };
                let end = self.expect_sym("]")?.end;
                Ok(Arith::Load {
                    proto,
                    index: Box::new(index),
                    size,
                    span: Span::new(start, end),
                })
            }
            _ => Err(self.syntax()),
        }
    }

    /// A `NUM` with its span.
    fn number(&mut self) -> R<Number> {
        let (value, span) = self.num()?;
        Ok(Number { value, span })
    }

    fn opt_pnum(&mut self) -> R<Option<Number>> {
        if matches!(self.peek(), Some(Tok::Num(_)) | Some(Tok::Sym("("))) {
            let (value, span) = self.pnum()?;
            Ok(Some(Number { value, span }))
        } else {
            Ok(None)
        }
    }

    fn id_or_num(&mut self) -> R<()> {
        match self.peek() {
            Some(Tok::Id(_)) | Some(Tok::Num(_)) => {
                self.bump();
                Ok(())
            }
            _ => Err(self.syntax()),
        }
    }

    fn id_tok(&mut self) -> R<String> {
        match self.peek().cloned() {
            Some(Tok::Id(s)) => {
                self.bump();
                Ok(s)
            }
            _ => Err(self.syntax()),
        }
    }

    // Values after `vpi`, `vci` and the MTP3 fields.
    fn field_value(&mut self) -> R<()> {
        match self.peek() {
            Some(Tok::Num(_)) => {
                self.bump();
            }
            Some(Tok::Sym(">" | ">=" | "=" | "<=" | "<" | "!=")) => {
                self.bump();
                self.num()?;
            }
            Some(Tok::Sym("(")) => {
                self.bump();
                self.num()?;
                while self.is_kw("or") {
                    self.bump();
                    self.num()?;
                }
                self.expect_sym(")")?;
            }
            _ => return Err(self.syntax()),
        }
        Ok(())
    }

    fn other(&mut self, start: usize) -> R<Expr> {
        let proto = self.kw().and_then(pname);
        if proto.is_some() {
            self.bump();
        }
        let k = self.kw().ok_or_else(|| self.syntax())?;
        let kspan = self.bump();
        let p = match k {
            "broadcast" => Primitive::Broadcast(proto),
            "multicast" => Primitive::Multicast(proto),
            "type" => {
                self.id_or_num()?;
                if self.is_kw("subtype") {
                    self.bump();
                    self.id_or_num()?;
                }
                Primitive::OtherLink("type")
            }
            "subtype" => {
                self.id_tok()?;
                Primitive::OtherLink("subtype")
            }
            "dir" => {
                self.id_or_num()?;
                Primitive::OtherLink("dir")
            }
            _ if proto.is_some() => return Err(self.syntax_at(kspan)),
            "less" => Primitive::Less(self.num()?.0),
            "greater" => Primitive::Greater(self.num()?.0),
            "byte" => {
                let (idx, _) = self.num()?;
                let op = match self.peek() {
                    Some(Tok::Sym("&")) => ByteOp::And,
                    Some(Tok::Sym("|")) => ByteOp::Or,
                    Some(Tok::Sym("<")) => ByteOp::Lt,
                    Some(Tok::Sym(">")) => ByteOp::Gt,
                    Some(Tok::Sym("=")) => ByteOp::Eq,
                    _ => return Err(self.syntax()),
                };
                self.bump();
                Primitive::Byte(idx, op, self.number()?)
            }
            "inbound" => Primitive::Inbound,
            "outbound" => Primitive::Outbound,
            "ifindex" => Primitive::IfIndex(self.num()?.0),
            "vlan" => Primitive::Vlan(self.opt_pnum()?),
            "mpls" => Primitive::Mpls(self.opt_pnum()?),
            "pppoed" => Primitive::Pppoed,
            "pppoes" => Primitive::Pppoes(self.opt_pnum()?),
            "geneve" => Primitive::Geneve(self.opt_pnum()?),
            "llc" => Primitive::Llc(self.llc()?),
            "ifname" | "rset" | "action" => {
                self.id_tok()?;
                Primitive::OtherLink(k)
            }
            "rnr" | "srnr" => {
                self.num()?;
                Primitive::OtherLink(k)
            }
            "reason" => {
                self.id_or_num()?;
                Primitive::OtherLink(k)
            }
            "lane" | "metac" | "bcc" | "oamf4ec" | "oamf4sc" | "sc" | "ilmic" | "oam" | "oamf4"
            | "connectmsg" | "metaconnect" | "fisu" | "lssu" | "msu" | "hfisu" | "hlssu"
            | "hmsu" => Primitive::OtherLink(k),
            "vpi" | "vci" | "sio" | "opc" | "dpc" | "sls" | "hsio" | "hopc" | "hdpc" | "hsls" => {
                self.field_value()?;
                Primitive::OtherLink(k)
            }
            _ => return Err(self.syntax_at(kspan)),
        };
        self.cur = None;
        Ok(self.prim(p, start))
    }

    fn llc(&mut self) -> R<Llc> {
        if self.is_kw("rnr") {
            self.bump();
            return Ok(Llc::SSubtype(0x05));
        }
        let Some(Tok::Id(name)) = self.peek().cloned() else {
            return Ok(Llc::Any);
        };
        let span = self.bump();
        Ok(match name.to_ascii_lowercase().as_str() {
            "i" => Llc::I,
            "s" => Llc::S,
            "u" => Llc::U,
            "rr" => Llc::SSubtype(0x01),
            "rnr" => Llc::SSubtype(0x05),
            "rej" => Llc::SSubtype(0x09),
            "ui" => Llc::USubtype(0x03),
            "ua" => Llc::USubtype(0x63),
            "disc" => Llc::USubtype(0x43),
            "dm" => Llc::USubtype(0x0f),
            "sabme" => Llc::USubtype(0x6f),
            "test" => Llc::USubtype(0xe3),
            "xid" => Llc::USubtype(0xaf),
            "frmr" => Llc::USubtype(0x87),
            _ => {
                return Err(CompileError::new(
                    format!("unknown LLC type name \"{name}\""),
                    span,
                ));
            }
        })
    }
}
