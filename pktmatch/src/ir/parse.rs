//! Reads the text form of an [`Ir`] back (the syntax is described in the
//! module documentation of [`crate::ir`]).
//!
//! Values are pushed into the arena as they are written, without the
//! folding and interning of [`Ir::val`]: `v7` of the text is value 7,
//! so what [`Ir`]'s `Display` printed parses back to the same arena. The
//! parser checks the syntax, the numbering (`v0`, `v1`, ... and `b0`,
//! `b1`, ... in order) and that every referenced value and block is
//! defined somewhere in the text; the IR's invariants (edges forward,
//! operands earlier, sizes, variables) are [`Ir::verify`]'s job, so that
//! tests can write IRs that break them.

use super::print::{BIN_OPS, CMP_OPS, METAS, bin_name, cmp_name, meta_name};
use super::{
    Block, BlockId, Cond, Edge, EntityRef, Ir, Key, KeyPart, OnShort, Semantics, Val, ValNode,
    VarNo, Verdict,
};
use crate::Span;

/// A syntax error in the text form of an IR, at a 1-based line and
/// column (in characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: {message}")]
pub struct ParseError {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1.
    pub col: usize,
    /// What is wrong.
    pub message: String,
}

impl Ir {
    /// Parses the text form of an IR (what its `Display` prints; the
    /// syntax is in the [module documentation](crate::ir)), value for
    /// value: printing the result gives the same text, up to spacing,
    /// comments, blank lines and the spellings the printer does not use
    /// (decimal constants, `[v2:1]`). The result is not verified: call
    /// [`Ir::verify`] for that.
    pub fn from_text(text: &str) -> Result<Ir, ParseError> {
        let mut p = Parser {
            ir: Ir::new(),
            entry_seen: false,
            val_refs: Vec::new(),
            block_refs: Vec::new(),
        };
        let mut last = 0;
        for (i, line) in text.lines().enumerate() {
            last = i + 1;
            p.line(i + 1, line)?;
        }
        if !p.entry_seen {
            return Err(ParseError {
                line: last + 1,
                col: 1,
                message: "no `entry` line".into(),
            });
        }
        p.check_refs()?;
        Ok(p.ir)
    }
}

/// A token of a line.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tok<'a> {
    /// Letters, digits and `_`.
    Word(&'a str),
    /// One punctuation character.
    Punct(char),
}

/// Splits `code` into tokens with their 1-based columns.
fn tokenize(line: usize, code: &str) -> Result<Vec<(usize, Tok<'_>)>, ParseError> {
    let mut out = Vec::new();
    let mut chars = code.char_indices().enumerate().peekable();
    while let Some((col, (at, c))) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' {
            let mut end = at + c.len_utf8();
            while let Some(&(_, (j, d))) = chars.peek() {
                if !(d.is_ascii_alphanumeric() || d == '_') {
                    break;
                }
                end = j + d.len_utf8();
                chars.next();
            }
            out.push((col + 1, Tok::Word(&code[at..end])));
        } else if "=,[]+:?".contains(c) {
            out.push((col + 1, Tok::Punct(c)));
        } else {
            return Err(ParseError {
                line,
                col: col + 1,
                message: format!("unexpected character `{c}`"),
            });
        }
    }
    Ok(out)
}

/// The state of a parse.
struct Parser {
    ir: Ir,
    entry_seen: bool,
    /// Values referenced (checked once all are defined).
    val_refs: Vec<Ref<Val>>,
    /// Blocks referenced.
    block_refs: Vec<Ref<BlockId>>,
}

/// A reference to a value or block, and where it is.
#[derive(Clone, Copy)]
struct Ref<K> {
    /// What it names.
    id: K,
    /// Its line.
    line: usize,
    /// Its column.
    col: usize,
}

/// The tokens of one line, read left to right.
struct Line<'a> {
    line: usize,
    toks: Vec<(usize, Tok<'a>)>,
    at: usize,
    /// The column just past the code (for errors at its end).
    end_col: usize,
}

impl<'a> Line<'a> {
    /// An error at the current token (or the end of the line).
    fn err(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line,
            col: self.col(),
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<Tok<'a>> {
        self.toks.get(self.at).map(|t| t.1)
    }

    /// The column of the current token (or of the end of the line).
    fn col(&self) -> usize {
        self.toks.get(self.at).map_or(self.end_col, |t| t.0)
    }

    fn word(&mut self, what: &str) -> Result<&'a str, ParseError> {
        match self.peek() {
            Some(Tok::Word(w)) => {
                self.at += 1;
                Ok(w)
            }
            _ => Err(self.err(format!("expected {what}"))),
        }
    }

    fn punct(&mut self, c: char) -> Result<(), ParseError> {
        if self.peek() == Some(Tok::Punct(c)) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.err(format!("expected `{c}`")))
        }
    }

    fn keyword(&mut self, k: &str) -> Result<(), ParseError> {
        if self.peek() == Some(Tok::Word(k)) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.err(format!("expected `{k}`")))
        }
    }

    fn end(&self) -> Result<(), ParseError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.err("expected the end of the line")),
        }
    }

    /// A number: decimal, or hexadecimal after `0x`.
    fn number(&mut self, what: &str) -> Result<u32, ParseError> {
        let col = self.col();
        let w = self.word(what)?;
        parse_number(w).ok_or(ParseError {
            line: self.line,
            col,
            message: format!("expected {what}, a 32-bit number, not `{w}`"),
        })
    }

    /// A number of bytes that fits a `u8`; `too_many` words the error.
    fn byte_count(&mut self, what: &str, too_many: &str) -> Result<u8, ParseError> {
        let col = self.col();
        let n = self.number(what)?;
        u8::try_from(n).map_err(|_| ParseError {
            line: self.line,
            col,
            message: format!("{too_many} of {n} bytes"),
        })
    }

    /// A variable, `varN`.
    fn var(&mut self) -> Result<u32, ParseError> {
        let col = self.col();
        let v = self.word("a variable `varN`")?;
        numbered(v, "var").ok_or_else(|| ParseError {
            line: self.line,
            col,
            message: format!("expected a variable `varN`, not `{v}`"),
        })
    }
}

/// A decimal or `0x` hexadecimal `u32`.
fn parse_number(w: &str) -> Option<u32> {
    match w.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => w.parse().ok(),
    }
}

/// The number after `prefix` in a word such as `var2` or `verdict3`.
fn numbered(w: &str, prefix: &str) -> Option<u32> {
    let digits = w.strip_prefix(prefix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The number of a value or block, `v12` or `b3`: below `u32::MAX`,
/// which no [`Val`] or [`BlockId`] can have (entity keys reserve it).
fn numbered_id(w: &str, prefix: &str) -> Option<u32> {
    numbered(w, prefix).filter(|&n| n != u32::MAX)
}

impl Parser {
    fn line(&mut self, line: usize, text: &str) -> Result<(), ParseError> {
        let (code, comment) = match text.split_once('#') {
            Some((c, rest)) => (c, Some(rest)),
            None => (text, None),
        };
        let toks = tokenize(line, code)?;
        let mut l = Line {
            line,
            toks,
            at: 0,
            end_col: code.chars().count() + 1,
        };
        let Some(Tok::Word(first)) = l.peek() else {
            if l.peek().is_none() {
                return Ok(());
            }
            return Err(l.err(
                "expected `entry`, `semantics`, `pcap_unoptimized`, `vN = ...` or `bN: ...`",
            ));
        };
        if first == "semantics" {
            l.at += 1;
            if !self.ir.vals.is_empty() || self.entry_seen {
                return Err(l.err("`semantics` comes first"));
            }
            self.ir.semantics = match l.word("`libpcap` or `exact`")? {
                "libpcap" => Semantics::Libpcap,
                "exact" => Semantics::Exact,
                w => {
                    l.at -= 1;
                    return Err(l.err(format!("expected `libpcap` or `exact`, not `{w}`")));
                }
            };
            l.end()?;
        } else if first == "pcap_unoptimized" {
            if self.ir.pcap_unoptimized {
                return Err(l.err("`pcap_unoptimized` given twice"));
            }
            l.at += 1;
            l.end()?;
            self.ir.pcap_unoptimized = true;
        } else if first == "entry" {
            if self.entry_seen {
                return Err(l.err("`entry` given twice"));
            }
            l.at += 1;
            self.ir.entry = if l.peek() == Some(Tok::Word("none")) {
                l.at += 1;
                None
            } else {
                Some(self.edge(&mut l)?)
            };
            l.end()?;
            self.entry_seen = true;
        } else if let Some(n) = numbered_id(first, "v") {
            let want = self.ir.vals.len();
            if n as usize != want {
                return Err(l.err(format!("expected v{want} (values are numbered in order)")));
            }
            l.at += 1;
            l.punct('=')?;
            let node = self.node(&mut l)?;
            l.end()?;
            self.ir.push_node(node);
        } else if let Some(n) = numbered_id(first, "b") {
            let want = self.ir.blocks.len();
            if n as usize != want {
                return Err(l.err(format!("expected b{want} (blocks are numbered in order)")));
            }
            l.at += 1;
            l.punct(':')?;
            let mut block = self.block(&mut l)?;
            l.end()?;
            if let Some(c) = comment {
                block.span = span_of(c).unwrap_or_default();
            }
            self.ir.blocks.push(block);
        } else {
            return Err(l.err(
                "expected `entry`, `semantics`, `pcap_unoptimized`, `vN = ...` or `bN: ...`",
            ));
        }
        Ok(())
    }

    /// A value reference, `vN`.
    fn val(&mut self, l: &mut Line<'_>) -> Result<Val, ParseError> {
        let col = l.col();
        let w = l.word("a value `vN`")?;
        let Some(n) = numbered_id(w, "v") else {
            l.at -= 1;
            return Err(l.err(format!("expected a value `vN`, not `{w}`")));
        };
        let id = Val::from_u32(n);
        self.val_refs.push(Ref {
            id,
            line: l.line,
            col,
        });
        Ok(id)
    }

    /// An edge: `bN`, `accept`, `reject` or `verdictN`.
    fn edge(&mut self, l: &mut Line<'_>) -> Result<Edge, ParseError> {
        let col = l.col();
        let w = l.word("`accept`, `reject`, `verdictN` or a block `bN`")?;
        Ok(match w {
            "accept" => Edge::ACCEPT,
            "reject" => Edge::REJECT,
            _ => match (numbered_id(w, "b"), numbered(w, "verdict")) {
                (Some(n), _) => {
                    let id = BlockId::from_u32(n);
                    self.block_refs.push(Ref {
                        id,
                        line: l.line,
                        col,
                    });
                    Edge::Block(id)
                }
                (None, Some(v)) => Edge::Verdict(Verdict(v)),
                (None, None) => {
                    l.at -= 1;
                    return Err(l.err(format!(
                        "expected `accept`, `reject`, `verdictN` or a block `bN`, not `{w}`"
                    )));
                }
            },
        })
    }

    /// The right-hand side of a value line.
    fn node(&mut self, l: &mut Line<'_>) -> Result<ValNode, ParseError> {
        let w = l.word("a value: const, load, len, meta, var, neg or an operator")?;
        Ok(match w {
            "const" => ValNode::Const(l.number("a constant")?),
            "len" => ValNode::Len,
            "var" => ValNode::Var(l.number("a variable number")?),
            "neg" => ValNode::Neg(self.val(l)?),
            "meta" => {
                let name = l.word("a metadata field")?;
                match METAS.into_iter().find(|m| meta_name(*m) == name) {
                    Some(m) => ValNode::Meta(m),
                    None => {
                        l.at -= 1;
                        return Err(l.err(format!(
                            "unknown metadata field `{name}` (vlan_present, vlan_tci, vlan_proto, ifindex, pkttype)"
                        )));
                    }
                }
            }
            "load" => {
                l.punct('[')?;
                let off = match l.peek() {
                    Some(Tok::Word(w)) if numbered_id(w, "v").is_some() => Some(self.val(l)?),
                    _ => None,
                };
                let k = match (off, l.peek()) {
                    (Some(_), Some(Tok::Punct(':'))) => 0,
                    (Some(_), _) => {
                        l.punct('+')?;
                        l.number("a byte offset")?
                    }
                    (None, _) => l.number("a byte offset or a value `vN`")?,
                };
                l.punct(':')?;
                let size = l.byte_count("a size in bytes", "a load")?;
                l.punct(']')?;
                ValNode::Load { off, k, size }
            }
            _ => match BIN_OPS.into_iter().find(|op| bin_name(*op) == w) {
                Some(op) => {
                    let a = self.val(l)?;
                    l.punct(',')?;
                    let b = self.val(l)?;
                    ValNode::Bin(op, a, b)
                }
                None => {
                    l.at -= 1;
                    return Err(l.err(format!("unknown value `{w}`")));
                }
            },
        })
    }

    /// The rest of a block line, after `bN:` (without the comment).
    fn block(&mut self, l: &mut Line<'_>) -> Result<Block, ParseError> {
        let w = l.word("a test: eq, gt, ge, set, protochain, let, act or lookup")?;
        let cond = match w {
            "protochain" => {
                let family = l.word("`ipv4` or `ipv6`")?;
                let ipv6 = match family {
                    "ipv4" => false,
                    "ipv6" => true,
                    _ => {
                        l.at -= 1;
                        return Err(l.err("expected `ipv4` or `ipv6`"));
                    }
                };
                l.keyword("nl")?;
                l.punct('=')?;
                let nl = l.number("the network header's offset")?;
                l.keyword("proto")?;
                l.punct('=')?;
                let proto = l.number("a protocol number")?;
                Cond::ProtoChain { nl, ipv6, proto }
            }
            "let" => {
                let var = l.var()?;
                l.punct('=')?;
                let val = self.val(l)?;
                Cond::Let { var, val }
            }
            "act" => Cond::Act {
                action: l.number("an action number")?,
            },
            "lookup" => {
                l.punct('[')?;
                let mut parts = Vec::new();
                while l.peek() != Some(Tok::Punct(']')) {
                    let host = l.peek() == Some(Tok::Word("host"));
                    if host {
                        l.at += 1;
                    }
                    let val = self.val(l)?;
                    l.punct(':')?;
                    let bytes = l.byte_count("1, 2 or 4 bytes", "a key part")?;
                    parts.push(if host {
                        KeyPart::host(val, bytes)
                    } else {
                        KeyPart::network(val, bytes)
                    });
                }
                l.punct(']')?;
                l.keyword("act")?;
                let action = l.number("an action number")?;
                let result = if l.peek() == Some(Tok::Word("into")) {
                    l.at += 1;
                    Some(VarNo::new(l.var()? as usize))
                } else {
                    None
                };
                Cond::Lookup {
                    key: self.ir.key(Key { parts }),
                    action,
                    result: result.into(),
                }
            }
            _ => match CMP_OPS.into_iter().find(|op| cmp_name(*op) == w) {
                Some(op) => {
                    let a = self.val(l)?;
                    l.punct(',')?;
                    let b = self.val(l)?;
                    let relation = l.peek() == Some(Tok::Word("relation"));
                    if relation {
                        l.at += 1;
                    }
                    Cond::Cmp { a, op, b, relation }
                }
                None => {
                    l.at -= 1;
                    return Err(l.err(format!("unknown test `{w}`")));
                }
            },
        };
        l.punct('?')?;
        let t = self.edge(l)?;
        l.punct(':')?;
        let f = self.edge(l)?;
        let short = if l.peek() == Some(Tok::Word("short")) {
            l.at += 1;
            match l.peek() {
                Some(Tok::Word("true")) => {
                    l.at += 1;
                    OnShort::True
                }
                Some(Tok::Word("false")) => {
                    l.at += 1;
                    OnShort::False
                }
                // Any other edge (`b5`, `verdict3`, `accept`, `reject`).
                w => OnShort::To(self.edge(l).map_err(|mut e| {
                    let w = match w {
                        Some(Tok::Word(w)) => w,
                        _ => "",
                    };
                    e.message = format!(
                        "expected `true`, `false` or an edge (`accept`, `reject`, \
                         `verdictN`, `bN`), not `{w}`"
                    );
                    e
                })?),
            }
        } else {
            OnShort::Reject
        };
        Ok(Block::new(cond, t, f, Span::default()).on_short(short))
    }

    /// Every reference names a value or block the text defines.
    fn check_refs(&self) -> Result<(), ParseError> {
        for r in &self.val_refs {
            if !self.ir.vals.is_valid(r.id) {
                return Err(ParseError {
                    line: r.line,
                    col: r.col,
                    message: format!("{} is not defined", r.id),
                });
            }
        }
        for r in &self.block_refs {
            if r.id.index() >= self.ir.blocks.len() {
                return Err(ParseError {
                    line: r.line,
                    col: r.col,
                    message: format!("{} is not defined", r.id),
                });
            }
        }
        Ok(())
    }
}

/// The span a block line's comment gives, `START..END`; `None` for any
/// other comment.
fn span_of(comment: &str) -> Option<Span> {
    let (s, e) = comment.trim().split_once("..")?;
    let (s, e) = (s.parse().ok()?, e.parse().ok()?);
    Some(Span::new(s, e))
}
