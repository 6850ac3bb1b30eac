//! The syntax tree printed back as nft text: one item a line, blocks
//! indented with tabs, operators spaced. Parsing the printed text gives
//! the same tree again (spans aside), which the tests use to check that
//! the parser keeps everything it reads.

use std::fmt::{self, Display, Formatter, Write};

use crate::syntax::ast::*;

impl Display for Ruleset {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for c in &self.commands {
            writeln!(f, "{c}")?;
        }
        Ok(())
    }
}

impl Display for Command {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Command::FlushRuleset(_) => f.write_str("flush ruleset"),
            Command::Define(d) => write!(f, "{d}"),
            Command::Table(t) => {
                write!(f, "table {} {{", t.table)?;
                let mut body = String::new();
                for item in &t.items {
                    writeln!(body, "{item}")?;
                }
                write_block(f, &body)
            }
            Command::Chain(c) => {
                write!(f, "add chain {} ", c.table)?;
                write!(f, "{}", c.item)
            }
            Command::Rule(r) => write!(
                f,
                "add rule {} {} {}",
                r.table, r.item.chain.name, r.item.rule
            ),
            Command::Set(s) => {
                let prefix = format!("add {} {}", set_keyword(&s.item), s.table);
                set_decl(f, &prefix, &s.item)
            }
            Command::Element(e) => write!(
                f,
                "add element {} {} {}",
                e.table, e.item.set.name, e.item.elements
            ),
        }
    }
}

impl Display for TableRef {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if let Some(family) = &self.family {
            write!(f, "{} ", family.name)?;
        }
        f.write_str(&self.name.name)
    }
}

/// ` {`, the body indented one tab, `}`.
fn write_block(f: &mut Formatter<'_>, body: &str) -> fmt::Result {
    f.write_str("\n")?;
    for line in body.lines() {
        writeln!(f, "\t{line}")?;
    }
    f.write_str("}")
}

impl Display for Define {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match (&self.kind, &self.value) {
            (DefineKind::Undefine, _) | (_, None) => write!(f, "undefine {}", self.name.name),
            (DefineKind::Define, Some(v)) => write!(f, "define {} = {v}", self.name.name),
            (DefineKind::Redefine, Some(v)) => write!(f, "redefine {} = {v}", self.name.name),
        }
    }
}

impl Display for TableItem {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            TableItem::Define(d) => write!(f, "{d}"),
            TableItem::Chain(c) => write!(f, "chain {c}"),
            TableItem::Set(s) => write!(f, "{s}"),
            TableItem::Counter(c) => {
                write!(f, "counter {} {{", c.name.name)?;
                if let Some(p) = c.packets {
                    write!(f, " packets {}", p.value)?;
                }
                if let Some(b) = c.bytes {
                    write!(f, " bytes {}", b.value)?;
                }
                f.write_str(" }")
            }
            TableItem::Quota(q) => {
                write!(f, "quota {} {{ {} }}", q.name.name, q.quota)
            }
            TableItem::Flags(words) => {
                write!(f, "flags {}", join(words.iter().map(|w| &w.name), ", "))
            }
            TableItem::Comment(c) => write!(f, "comment \"{}\"", c.name),
            TableItem::Unsupported(u) => write!(f, "# unsupported: {}", u.what),
        }
    }
}

impl Display for ChainDecl {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} {{", self.name.name)?;
        let mut body = String::new();
        for item in &self.items {
            writeln!(body, "{item}")?;
        }
        write_block(f, &body)
    }
}

impl Display for ChainItem {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            ChainItem::Define(d) => write!(f, "{d}"),
            ChainItem::Hook(h) => write!(f, "{h};"),
            ChainItem::Policy(p) => write!(f, "policy {p};"),
            ChainItem::Comment(c) => write!(f, "comment \"{}\"", c.name),
            ChainItem::Flags(words) => {
                write!(f, "flags {}", join(words.iter().map(|w| &w.name), ", "))
            }
            ChainItem::Rule(r) => write!(f, "{r}"),
        }
    }
}

impl Display for HookSpec {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "type {} hook {}", self.chain_type.name, self.hook.name)?;
        match self.devices.as_slice() {
            [] => {}
            [one] => write!(f, " device {one}")?,
            many => write!(f, " devices = {{ {} }}", join(many.iter(), ", "))?,
        }
        if let Some(p) = &self.priority {
            write!(f, " priority {}", p.base)?;
            match p.offset {
                Some(o) if o < 0 => write!(f, " - {}", o.unsigned_abs())?,
                Some(o) => write!(f, " + {o}")?,
                None => {}
            }
        }
        Ok(())
    }
}

impl Display for Rule {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&join(self.stmts.iter(), " "))?;
        if let Some(c) = &self.comment {
            write!(f, " comment \"{}\"", c.name)?;
        }
        Ok(())
    }
}

impl Display for Stmt {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Stmt::Match(r) => {
                write!(f, "{}", r.left)?;
                if r.op != RelOp::Implicit {
                    write!(f, " {}", r.op.text())?;
                }
                write!(f, " {}", r.right)?;
                if let Some(m) = &r.mask {
                    write!(f, " / {m}")?;
                }
                Ok(())
            }
            Stmt::Verdict(v) => write!(f, "{}", v.kind),
            Stmt::VerdictMap(v) => write!(f, "{} vmap {}", v.key, v.map),
            Stmt::Counter(c) => {
                f.write_str("counter")?;
                if let Some(n) = &c.name {
                    write!(f, " name {}", ObjectName(n))?;
                }
                if let Some(p) = c.packets {
                    write!(f, " packets {}", p.value)?;
                }
                if let Some(b) = c.bytes {
                    write!(f, " bytes {}", b.value)?;
                }
                Ok(())
            }
            Stmt::DynSet(d) => {
                let verb = if d.update { "update" } else { "add" };
                write!(f, "{verb} {} {{ {}", d.set, d.key)?;
                if let Some(t) = &d.timeout {
                    write!(f, " timeout {}", t.name)?;
                }
                for s in &d.stmts {
                    write!(f, " {s}")?;
                }
                f.write_str(" }")
            }
            Stmt::Limit(l) => {
                f.write_str("limit")?;
                if let Some(n) = &l.name {
                    write!(f, " name {}", ObjectName(n))?;
                }
                if let Some(r) = &l.rate {
                    f.write_str(" rate ")?;
                    if r.over {
                        f.write_str("over ")?;
                    }
                    write!(f, "{}", r.amount.value)?;
                    match &r.amount_unit {
                        Some(u) => write!(f, " {}/{}", u.name, r.per.name)?,
                        None => write!(f, "/{}", r.per.name)?,
                    }
                    if let Some((n, unit)) = &r.burst {
                        write!(f, " burst {}", n.value)?;
                        if let Some(u) = unit {
                            write!(f, " {}", u.name)?;
                        }
                    }
                }
                Ok(())
            }
            Stmt::Quota(q) => {
                f.write_str("quota")?;
                if let Some(n) = &q.name {
                    write!(f, " name {}", ObjectName(n))?;
                }
                if let Some(spec) = &q.quota {
                    write!(f, " {spec}")?;
                }
                Ok(())
            }
            Stmt::Log(l) => {
                f.write_str("log")?;
                for o in &l.options {
                    write!(f, " {} {}", o.key.name, o.value)?;
                }
                Ok(())
            }
            Stmt::Fwd(fw) => {
                f.write_str("fwd")?;
                if let Some(fam) = &fw.family {
                    write!(f, " {}", fam.name)?;
                }
                write!(f, " to {}", fw.to)?;
                if let Some(d) = &fw.device {
                    write!(f, " device {d}")?;
                }
                Ok(())
            }
            Stmt::Pcap(p) => write!(f, "pcap \"{}\"", p.name),
            Stmt::Mangle(m) => write!(f, "{} set {}", m.target, m.value),
            Stmt::Unsupported(u) => write!(f, "{} ...", u.what),
        }
    }
}

/// The name of a counter, quota or limit in a statement, quoted as nft
/// lists it (`counter name "c1"`); a variable stays as written.
struct ObjectName<'a>(&'a Expr);

impl Display for ObjectName<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.0.kind {
            ExprKind::Word(w) => write!(f, "\"{w}\""),
            _ => write!(f, "{}", self.0),
        }
    }
}

impl Display for QuotaSpec {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if let Some(m) = &self.mode {
            write!(f, "{} ", m.name)?;
        }
        write!(f, "{} {}", self.amount.0.value, self.amount.1.name)?;
        if let Some((n, u)) = &self.used {
            write!(f, " used {} {}", n.value, u.name)?;
        }
        Ok(())
    }
}

impl Display for SetDecl {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        set_decl(f, set_keyword(self), self)
    }
}

/// `set` or `map`.
fn set_keyword(decl: &SetDecl) -> &'static str {
    if decl.is_map { "map" } else { "set" }
}

/// `PREFIX NAME { ITEMS }`.
fn set_decl(f: &mut Formatter<'_>, prefix: &str, decl: &SetDecl) -> fmt::Result {
    write!(f, "{prefix} {} {{", decl.name.name)?;
    let mut body = String::new();
    for item in &decl.items {
        writeln!(body, "{item}")?;
    }
    write_block(f, &body)
}

impl Display for SetItem {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            SetItem::Type { key, data, .. } => {
                write!(f, "type {}", join(key.iter().map(|k| &k.name), " . "))?;
                if let Some(d) = data {
                    write!(f, " : {}", d.name)?;
                }
                f.write_str(";")
            }
            SetItem::Typeof { key, data, .. } => {
                write!(f, "typeof {}", join(key.iter(), " . "))?;
                if let Some(d) = data {
                    write!(f, " : {}", d.name)?;
                }
                f.write_str(";")
            }
            SetItem::Flags(words) => {
                write!(f, "flags {};", join(words.iter().map(|w| &w.name), ", "))
            }
            SetItem::Elements(e) => write!(f, "elements = {e}"),
            SetItem::Size(n) => write!(f, "size {};", n.value),
            SetItem::Policy(p) => write!(f, "policy {};", p.name),
            SetItem::Counter(_) => f.write_str("counter;"),
            SetItem::AutoMerge(_) => f.write_str("auto-merge;"),
            SetItem::Comment(c) => write!(f, "comment \"{}\";", c.name),
            SetItem::Timeout(t) => write!(f, "timeout {};", t.name),
            SetItem::GcInterval(t) => write!(f, "gc-interval {};", t.name),
            SetItem::Unsupported(u) => write!(f, "# unsupported: {}", u.what),
        }
    }
}

impl Display for VerdictKind {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            VerdictKind::Accept => f.write_str("accept"),
            VerdictKind::Drop => f.write_str("drop"),
            VerdictKind::Continue => f.write_str("continue"),
            VerdictKind::Return => f.write_str("return"),
            VerdictKind::Jump(c) => write!(f, "jump {c}"),
            VerdictKind::Goto(c) => write!(f, "goto {c}"),
        }
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Payload { proto, field } => write!(f, "{} {}", proto.name, field.name),
            ExprKind::Raw { base, offset, len } => {
                write!(f, "@{},{},{}", base.name, offset.value, len.value)
            }
            ExprKind::Meta { key } => write!(f, "meta {}", key.name),
            ExprKind::Unsupported(u) => write!(f, "{} ...", u.what),
            ExprKind::Number(n) => write!(f, "{n}"),
            ExprKind::Word(w) => f.write_str(w),
            ExprKind::Quoted(s) => write!(f, "\"{s}\""),
            ExprKind::Addr(a) => write!(f, "{a}"),
            ExprKind::Variable(v) => write!(f, "${v}"),
            ExprKind::SetRef(s) => write!(f, "@{s}"),
            ExprKind::Binary { op, left, right } => {
                operand(f, left, *op, false)?;
                write!(f, " {} ", op.text())?;
                operand(f, right, *op, true)
            }
            ExprKind::Concat(parts) => f.write_str(&join(parts.iter(), " . ")),
            ExprKind::Prefix { value, len } => write!(f, "{value}/{}", len.value),
            ExprKind::Range { low, high } => write!(f, "{low}-{high}"),
            ExprKind::List(items) => f.write_str(&join(items.iter(), ",")),
            ExprKind::Set(elems) => {
                if elems.is_empty() {
                    return f.write_str("{}");
                }
                write!(f, "{{ {} }}", join(elems.iter(), ", "))
            }
            ExprKind::Verdict(v) => write!(f, "{v}"),
            ExprKind::Negative(n) => write!(f, "-{n}"),
        }
    }
}

impl Display for SetElem {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.key)?;
        if let Some(t) = &self.timeout {
            write!(f, " timeout {}", t.name)?;
        }
        if let Some(c) = &self.comment {
            write!(f, " comment \"{}\"", c.name)?;
        }
        if let Some(d) = &self.data {
            write!(f, " : {d}")?;
        }
        Ok(())
    }
}

/// How tightly an operator binds (nft's precedence: shifts, `&`, `^`, `|`).
fn precedence(op: BinOp) -> u8 {
    match op {
        BinOp::Shl | BinOp::Shr => 4,
        BinOp::And => 3,
        BinOp::Xor => 2,
        BinOp::Or => 1,
    }
}

/// An operand of `parent`, in parentheses when it binds less tightly (or
/// as tightly, on the right: the operators associate to the left).
fn operand(f: &mut Formatter<'_>, e: &Expr, parent: BinOp, right: bool) -> fmt::Result {
    let paren = match &e.kind {
        ExprKind::Binary { op, .. } => {
            let (p, c) = (precedence(parent), precedence(*op));
            c < p || (right && c == p)
        }
        _ => false,
    };
    if paren {
        write!(f, "({e})")
    } else {
        write!(f, "{e}")
    }
}

/// The items, printed and joined by `sep`.
fn join<T: Display>(items: impl Iterator<Item = T>, sep: &str) -> String {
    let mut out = String::new();
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        let _ = write!(out, "{item}");
    }
    out
}
