//! Rules and their statements.

use pktmatch::Span;

use super::Parser;
use crate::error::Error;
use crate::syntax::ast::*;
use crate::syntax::token::Tok;

/// Statements nft knows that we do not compile: the rest of the rule is
/// skipped and the checks refuse it by name.
const UNSUPPORTED_STMTS: [&str; 17] = [
    "reject",
    "snat",
    "dnat",
    "masquerade",
    "redirect",
    "tproxy",
    "queue",
    "dup",
    "notrack",
    "synproxy",
    "meter",
    "flow",
    "xt",
    "add",
    "update",
    "delete",
    "reset",
];

impl Parser<'_> {
    /// A rule: statements up to the end of the line (or `;`, or the `}`
    /// of the chain), and an optional `comment "..."` at the end.
    pub(super) fn rule(&mut self) -> Result<Rule, Error> {
        let start = self.peek().span;
        let mut stmts = Vec::new();
        let mut comment = None;
        while !self.at_end_of_statement() {
            if self.eat_word("comment").is_some() {
                comment = Some(self.quoted("comment")?);
                break;
            }
            let s = self.stmt()?;
            let last = matches!(s, Stmt::Unsupported(_));
            stmts.push(s);
            if last {
                break;
            }
        }
        let Some(first) = stmts.first() else {
            return Err(self.unexpected("a statement"));
        };
        let mut span = start.to(first.span());
        if let Some(s) = stmts.last() {
            span = span.to(s.span());
        }
        if let Some(c) = &comment {
            span = span.to(c.span);
        }
        Ok(Rule {
            stmts,
            comment,
            span,
        })
    }

    /// One statement.
    fn stmt(&mut self) -> Result<Stmt, Error> {
        if let Some(v) = self.verdict()? {
            return Ok(Stmt::Verdict(v));
        }
        let start = self.peek().span;
        match self.word() {
            Some("counter") => {
                self.bump();
                return self.counter_stmt(start).map(Stmt::Counter);
            }
            Some("limit") => {
                self.bump();
                return self.limit_stmt(start).map(Stmt::Limit);
            }
            Some("quota") => {
                self.bump();
                return self.quota_stmt(start).map(Stmt::Quota);
            }
            Some("log") => {
                self.bump();
                return self.log_stmt(start).map(Stmt::Log);
            }
            Some("fwd") => {
                self.bump();
                return self.fwd_stmt(start).map(Stmt::Fwd);
            }
            Some("pcap") => {
                self.bump();
                let filter = self.quoted("tcpdump filter")?;
                return Ok(Stmt::Pcap(Ident {
                    name: filter.name,
                    span: start.to(filter.span),
                }));
            }
            Some(w @ ("add" | "update")) if self.peek_nth(1).tok == Tok::At => {
                let update = w == "update";
                self.bump();
                return self.dynset_stmt(update, start).map(Stmt::DynSet);
            }
            Some(w) if UNSUPPORTED_STMTS.contains(&w) => {
                let what = w.to_string();
                let span = self.bump().span;
                self.skip_statement(span);
                return Ok(Stmt::Unsupported(Unsupported { what, span }));
            }
            _ => {}
        }
        if !self.at_selector() {
            return Err(self.unexpected("a statement"));
        }
        let left = self.lhs()?;
        if let ExprKind::Unsupported(u) = left.kind {
            return Ok(Stmt::Unsupported(u));
        }
        if self.eat_word("vmap").is_some() {
            let map = match *self.tok() {
                Tok::At => self.set_ref()?,
                Tok::Dollar => self.variable()?,
                _ => self.set_expr()?.0,
            };
            let span = left.span.to(map.span);
            return Ok(Stmt::VerdictMap(VerdictMap {
                key: left,
                map,
                span,
            }));
        }
        if self.eat_word("set").is_some() {
            let value = self.rhs()?;
            let span = left.span.to(value.span);
            return Ok(Stmt::Mangle(Mangle {
                target: left,
                value,
                span,
            }));
        }
        self.relation(left).map(Stmt::Match)
    }

    /// `@SET { KEY [timeout T] [STATEMENT ...] }` after `add` or
    /// `update`.
    fn dynset_stmt(&mut self, update: bool, start: Span) -> Result<DynSetStmt, Error> {
        let set = self.set_ref()?;
        let open = self.expect(&Tok::LBrace)?;
        self.enter(open)?;
        if !self.at_selector() {
            return Err(self.unexpected("a key (a selector or a concatenation)"));
        }
        let key = self.lhs()?;
        if let ExprKind::Unsupported(u) = &key.kind {
            return Err(Error::new(crate::check::refuse::message(&u.what), u.span));
        }
        let mut timeout = None;
        if self.eat_word("timeout").is_some() {
            timeout = Some(self.time("timeout")?);
        }
        let mut stmts = Vec::new();
        while *self.tok() != Tok::RBrace {
            let at = self.peek().span;
            let s = match self.word() {
                Some("limit") => {
                    self.bump();
                    Stmt::Limit(self.limit_stmt(at)?)
                }
                Some("counter") => {
                    self.bump();
                    Stmt::Counter(self.counter_stmt(at)?)
                }
                Some("quota") => {
                    self.bump();
                    Stmt::Quota(self.quota_stmt(at)?)
                }
                _ => return Err(self.unexpected("`limit`, `counter`, `quota` or `}`")),
            };
            stmts.push(s);
        }
        let end = self.expect(&Tok::RBrace)?;
        self.leave();
        Ok(DynSetStmt {
            update,
            set,
            key,
            timeout,
            stmts,
            span: start.to(end),
        })
    }

    /// `[OP] RIGHT [/ MASK]` after the left side of a match.
    fn relation(&mut self, left: Expr) -> Result<Relation, Error> {
        let op = match self.tok() {
            Tok::EqEq => RelOp::Eq,
            Tok::NotEq => RelOp::Ne,
            Tok::Lt => RelOp::Lt,
            Tok::Gt => RelOp::Gt,
            Tok::Le => RelOp::Le,
            Tok::Ge => RelOp::Ge,
            Tok::Bang => RelOp::Not,
            _ => RelOp::Implicit,
        };
        if op != RelOp::Implicit {
            self.bump();
        }
        let right = self.rhs()?;
        let mut span = left.span.to(right.span);
        let mut mask = None;
        if self.eat(&Tok::Slash).is_some() {
            let m = self.flag_mask()?;
            span = span.to(m.span);
            mask = Some(m);
        }
        Ok(Relation {
            left,
            op,
            right,
            mask,
            span,
        })
    }

    /// `NAME` after `name`: a word, a string or a variable.
    fn object_name(&mut self) -> Result<Expr, Error> {
        match self.tok().clone() {
            Tok::Word(w) | Tok::Quoted(w) => Ok(Expr::new(ExprKind::Word(w), self.bump().span)),
            Tok::Dollar => self.variable(),
            _ => Err(self.unexpected("object name")),
        }
    }

    /// After `counter`: `name NAME`, or `[packets N] [bytes M]`.
    fn counter_stmt(&mut self, start: Span) -> Result<CounterStmt, Error> {
        let mut c = CounterStmt {
            name: None,
            packets: None,
            bytes: None,
            span: start,
        };
        if self.eat_word("name").is_some() {
            let name = self.object_name()?;
            c.span = start.to(name.span);
            c.name = Some(name);
            return Ok(c);
        }
        if self.eat_word("packets").is_some() {
            let n = self.number("number")?;
            c.span = start.to(n.span);
            c.packets = Some(n);
        }
        if self.eat_word("bytes").is_some() {
            let n = self.number("number")?;
            c.span = start.to(n.span);
            c.bytes = Some(n);
        }
        Ok(c)
    }

    /// After `limit`: `rate [over] N/UNIT [burst N packets]`, `rate [over]
    /// N BYTES/UNIT [burst N BYTES]`, or `name NAME`.
    fn limit_stmt(&mut self, start: Span) -> Result<LimitStmt, Error> {
        if self.eat_word("name").is_some() {
            let name = self.object_name()?;
            let span = start.to(name.span);
            return Ok(LimitStmt {
                rate: None,
                name: Some(name),
                span,
            });
        }
        self.expect_word("rate")?;
        // nft 1.0.6 knows `over` here, not `until` (which quotas know).
        let over = self.eat_word("over").is_some();
        let amount = self.number("rate")?;
        let (amount_unit, per) = self.rate_unit()?;
        let mut span = start.to(per.span);
        let mut burst = None;
        if self.eat_word("burst").is_some() {
            let n = self.number("burst")?;
            let unit = self.keyword("`packets`, `bytes`, `kbytes` or `mbytes`")?;
            span = span.to(unit.span);
            burst = Some((n, Some(unit)));
        }
        Ok(LimitStmt {
            rate: Some(RateSpec {
                over,
                amount,
                amount_unit,
                per,
                burst,
            }),
            name: None,
            span,
        })
    }

    /// `/second`, `kbytes/second` (one word in nft's scanner) or `kbytes
    /// / second`: the byte unit if any, and the time unit.
    fn rate_unit(&mut self) -> Result<(Option<Ident>, Ident), Error> {
        if self.eat(&Tok::Slash).is_some() {
            return Ok((None, self.keyword("time unit")?));
        }
        let word = self.keyword("`/` or a byte unit")?;
        if let Some((unit, per)) = word.name.split_once('/') {
            let cut = word.span.start + unit.len();
            let unit = Ident {
                name: unit.to_string(),
                span: Span::new(word.span.start, cut),
            };
            let per = Ident {
                name: per.to_string(),
                span: Span::new(cut + 1, word.span.end),
            };
            return Ok((Some(unit), per));
        }
        self.expect(&Tok::Slash)?;
        let per = self.keyword("time unit")?;
        Ok((Some(word), per))
    }

    /// After `quota`: `name NAME` or a quota.
    fn quota_stmt(&mut self, start: Span) -> Result<QuotaStmt, Error> {
        if self.eat_word("name").is_some() {
            let name = self.object_name()?;
            let span = start.to(name.span);
            return Ok(QuotaStmt {
                quota: None,
                name: Some(name),
                span,
            });
        }
        let quota = self.quota_spec()?;
        let end = quota.used.as_ref().unwrap_or(&quota.amount).1.span;
        Ok(QuotaStmt {
            quota: Some(quota),
            name: None,
            span: start.to(end),
        })
    }

    /// `[over|until] N UNIT [used N UNIT]`.
    pub(super) fn quota_spec(&mut self) -> Result<QuotaSpec, Error> {
        let mode = match self.word() {
            Some("over" | "until") => Some(self.keyword("mode")?),
            _ => None,
        };
        let n = self.number("number")?;
        let unit = self.keyword("`bytes`, `kbytes` or `mbytes`")?;
        let mut used = None;
        if self.eat_word("used").is_some() {
            let n = self.number("number")?;
            let unit = self.keyword("`bytes`, `kbytes` or `mbytes`")?;
            used = Some((n, unit));
        }
        Ok(QuotaSpec {
            mode,
            amount: (n, unit),
            used,
        })
    }

    /// After `log`: its options.
    fn log_stmt(&mut self, start: Span) -> Result<LogStmt, Error> {
        let mut options = Vec::new();
        let mut span = start;
        while let Some("prefix" | "level" | "group" | "snaplen" | "queue-threshold" | "flags") =
            self.word()
        {
            let key = self.keyword("log option")?;
            let value = match key.name.as_str() {
                "prefix" => match self.tok().clone() {
                    Tok::Quoted(s) => Expr::new(ExprKind::Quoted(s), self.bump().span),
                    Tok::Dollar => self.variable()?,
                    _ => return Err(self.unexpected("quoted string")),
                },
                "level" => {
                    let w = self.keyword("log level")?;
                    Expr::new(ExprKind::Word(w.name), w.span)
                }
                "flags" => self.log_flags()?,
                _ => {
                    let n = self.number("number")?;
                    Expr::new(ExprKind::Number(n.value), n.span)
                }
            };
            span = span.to(value.span);
            options.push(LogOption { key, value });
        }
        Ok(LogStmt { options, span })
    }

    /// The words after `log flags` (`all`, `tcp sequence,options`, `ip
    /// options`, `skuid`, `ether`), as a list.
    fn log_flags(&mut self) -> Result<Expr, Error> {
        let mut words = Vec::new();
        loop {
            let w = self.keyword("log flag")?;
            words.push(Expr::new(ExprKind::Word(w.name), w.span));
            let more = match self.tok() {
                Tok::Comma => {
                    self.bump();
                    true
                }
                Tok::Word(w) => matches!(w.as_str(), "sequence" | "options"),
                _ => false,
            };
            if !more {
                break;
            }
        }
        let span = words[0].span.to(words[words.len() - 1].span);
        Ok(Expr::new(ExprKind::List(words), span))
    }

    /// After `fwd`: `to DEVICE`, or `ip|ip6 to ADDR device DEVICE`.
    fn fwd_stmt(&mut self, start: Span) -> Result<FwdStmt, Error> {
        let family = match self.word() {
            Some("ip" | "ip6") => Some(self.keyword("family")?),
            _ => None,
        };
        self.expect_word("to")?;
        let to = match self.tok().clone() {
            Tok::Addr(a) => Expr::new(ExprKind::Addr(a), self.bump().span),
            _ => self.device_expr()?,
        };
        let mut span = start.to(to.span);
        let mut device = None;
        if self.eat_word("device").is_some() {
            let d = self.device_expr()?;
            span = span.to(d.span);
            device = Some(d);
        }
        Ok(FwdStmt {
            family,
            to,
            device,
            span,
        })
    }

    /// A device: a string, a word or a variable.
    pub(super) fn device_expr(&mut self) -> Result<Expr, Error> {
        match self.tok().clone() {
            Tok::Quoted(s) => Ok(Expr::new(ExprKind::Quoted(s), self.bump().span)),
            Tok::Word(w) => Ok(Expr::new(ExprKind::Word(w), self.bump().span)),
            Tok::Dollar => self.variable(),
            _ => Err(self.unexpected("device name")),
        }
    }
}
