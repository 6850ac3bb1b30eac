//! The checked ruleset as text, one line per statement, for tests and for
//! reading what lowering will get:
//!
//! ```text
//! table t
//! chain t/c: hook ingress devices veth0 priority 0 policy accept
//!   rule 0:
//!     implied meta l4proto == 6
//!     tcp dport == 22
//!     drop
//! ```
//!
//! Values print by their type (addresses as addresses, the rest in
//! decimal, masks in hex); sets print their elements.

use std::fmt::{self, Display, Formatter, Write};
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::check::tree::*;
use crate::check::types::Type;

impl Display for Ruleset {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (_, t) in self.tables.iter() {
            write!(f, "table {}", t.name)?;
            if t.dormant {
                f.write_str(" dormant")?;
            }
            f.write_str("\n")?;
            for &id in &t.sets {
                writeln!(f, "set {}", self.set_text(id))?;
            }
            for &id in &t.counters {
                let c = &self.counters[id];
                writeln!(
                    f,
                    "counter {}: packets {} bytes {}",
                    c.name, c.packets, c.bytes
                )?;
            }
            for &id in &t.quotas {
                let q = &self.quotas[id];
                writeln!(f, "quota {}: {}", q.name, quota_text(&q.quota))?;
            }
            for &id in &t.chains {
                let c = &self.chains[id];
                write!(f, "chain {}/{}:", t.name, c.name)?;
                if let Some(b) = &c.base {
                    let hook = match b.hook {
                        Hook::Ingress => "ingress",
                        Hook::Egress => "egress",
                    };
                    let policy = match b.policy {
                        Policy::Accept => "accept",
                        Policy::Drop => "drop",
                    };
                    write!(
                        f,
                        " hook {hook} devices {} priority {} policy {policy}",
                        b.devices.join(","),
                        b.priority
                    )?;
                }
                f.write_str("\n")?;
                for (i, &r) in c.rules.iter().enumerate() {
                    let rule = &self.rules[r];
                    write!(f, "  rule {i}:")?;
                    if let Some(c) = &rule.comment {
                        write!(f, " # {c}")?;
                    }
                    f.write_str("\n")?;
                    for s in &rule.stmts {
                        writeln!(f, "    {}", self.stmt_text(s))?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A limit as text.
fn limit_text(l: &crate::check::tree::Limit) -> String {
    format!(
        "limit rate {}{} {}/{}s burst {}",
        if l.over { "over " } else { "" },
        l.rate,
        match l.unit {
            LimitUnit::Packets => "packets",
            LimitUnit::Bytes => "bytes",
        },
        l.per_seconds,
        l.burst
    )
}

impl Ruleset {
    /// One statement as text.
    pub fn stmt_text(&self, s: &Stmt) -> String {
        match s {
            Stmt::Match(m) => {
                let mut out = String::new();
                if m.implied {
                    out.push_str("implied ");
                }
                out.push_str(&key_text(&m.key));
                let ty = m.key.parts[0].source.ty();
                let bits = m.key.parts[0].bits();
                let _ = match m.test {
                    Test::Cmp { op, value } => {
                        write!(out, " {} {}", op_text(op), value_text(ty, bits, value))
                    }
                    Test::Range { low, high, negated } => write!(
                        out,
                        " {}{}-{}",
                        if negated { "!= " } else { "" },
                        value_text(ty, bits, low),
                        value_text(ty, bits, high)
                    ),
                    Test::Prefix {
                        value,
                        len,
                        negated,
                    } => write!(
                        out,
                        " {}{}/{len}",
                        if negated { "!= " } else { "" },
                        value_text(ty, bits, value)
                    ),
                    Test::InSet { set, negated } => {
                        write!(
                            out,
                            " {}{}",
                            if negated { "!= " } else { "" },
                            self.set_ref_text(set)
                        )
                    }
                };
                out
            }
            Stmt::Counter(Counter::Anonymous { packets, bytes }) => {
                format!("counter packets {packets} bytes {bytes}")
            }
            Stmt::Counter(Counter::Named(id)) => {
                format!("counter name {}", self.counters[*id].name)
            }
            Stmt::Limit(l) => limit_text(l),
            Stmt::DynSet(d) => {
                let mut out = format!(
                    "{} {} {{ {}",
                    if d.update { "update" } else { "add" },
                    self.set_ref_text(d.set),
                    key_text(&d.key)
                );
                if let Some(t) = d.timeout {
                    let _ = write!(out, " timeout {t}ms");
                }
                if let Some(l) = &d.limit {
                    let _ = write!(out, " {}", limit_text(l));
                }
                out.push_str(" }");
                out
            }
            Stmt::Quota(Quota::Anonymous(q)) => format!("quota {}", quota_text(q)),
            Stmt::Quota(Quota::Named(id)) => format!("quota name {}", self.quotas[*id].name),
            Stmt::Log(l) => format!(
                "log{} level {}",
                l.prefix
                    .as_ref()
                    .map(|p| format!(" prefix \"{p}\""))
                    .unwrap_or_default(),
                l.level
            ),
            Stmt::Fwd(fw) => format!("fwd to {}", fw.device),
            Stmt::Verdict(v) => self.verdict_text(*v),
            Stmt::VerdictMap(vm) => {
                format!("{} vmap {}", key_text(&vm.key), self.set_ref_text(vm.map))
            }
            Stmt::Pcap(p) => format!("pcap \"{}\"", p.filter),
        }
    }

    /// A verdict as text.
    fn verdict_text(&self, v: Verdict) -> String {
        match v {
            Verdict::Accept => "accept".into(),
            Verdict::Drop => "drop".into(),
            Verdict::Continue => "continue".into(),
            Verdict::Return => "return".into(),
            Verdict::Jump(c) => format!("jump {}", self.chains[c].name),
            Verdict::Goto(c) => format!("goto {}", self.chains[c].name),
        }
    }

    /// A set a rule uses: `@name` for a named one (its elements print
    /// with its table), the whole set for an anonymous one.
    fn set_ref_text(&self, id: SetId) -> String {
        match &self.sets[id].name {
            Some(n) => format!("@{n}"),
            None => self.set_text(id),
        }
    }

    /// A set: `@name` or `{ ... }` with its key types and elements.
    pub fn set_text(&self, id: SetId) -> String {
        let s = &self.sets[id];
        let types: Vec<String> = s
            .key
            .iter()
            .map(|k| format!("{}/{}", k.ty.name(), k.bits))
            .collect();
        let mut out = match &s.name {
            Some(n) => format!("@{n} "),
            None => String::new(),
        };
        let _ = write!(
            out,
            "[{}{}{}{}",
            types.join(" . "),
            if s.interval { " interval" } else { "" },
            if s.state.dynamic { " dynamic" } else { "" },
            if s.state.timeouts { " timeouts" } else { "" },
        );
        if let Some(t) = s.state.timeout {
            let _ = write!(out, " timeout {t}ms");
        }
        out.push(']');
        let elements: Vec<String> = s
            .elements
            .iter()
            .map(|e| {
                let parts: Vec<String> = e
                    .key
                    .iter()
                    .zip(&s.key)
                    .map(|(k, kt)| match k {
                        ElemKey::Value(v) => value_text(kt.ty, kt.bits, *v),
                        ElemKey::Range(l, h) => format!(
                            "{}-{}",
                            value_text(kt.ty, kt.bits, *l),
                            value_text(kt.ty, kt.bits, *h)
                        ),
                    })
                    .collect();
                let mut t = parts.join(" . ");
                if let Some(ms) = e.timeout {
                    let _ = write!(t, " timeout {ms}ms");
                }
                if let Some(v) = e.verdict {
                    let _ = write!(t, " : {}", self.verdict_text(v));
                }
                t
            })
            .collect();
        let _ = write!(out, " {{ {} }}", elements.join(", "));
        out
    }
}

/// A key: its parts joined by ` . `, masks shown.
fn key_text(k: &Key) -> String {
    let parts: Vec<String> = k
        .parts
        .iter()
        .map(|p| match p.mask {
            Some(m) => format!("{} & 0x{m:x}", p.source.name()),
            None => p.source.name(),
        })
        .collect();
    parts.join(" . ")
}

/// A comparison's operator.
fn op_text(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "==",
        CmpOp::Ne => "!=",
        CmpOp::Lt => "<",
        CmpOp::Gt => ">",
        CmpOp::Le => "<=",
        CmpOp::Ge => ">=",
    }
}

/// A quota's parameters.
fn quota_text(q: &QuotaSpec) -> String {
    format!(
        "{}{} bytes used {}",
        if q.over { "over " } else { "" },
        q.bytes,
        q.used
    )
}

/// A value of a type.
pub fn value_text(ty: Type, bits: u32, v: u128) -> String {
    match (ty, bits) {
        (Type::Ipv4Addr, 32) => Ipv4Addr::from(v as u32).to_string(),
        (Type::Ipv6Addr, 128) => Ipv6Addr::from(v).to_string(),
        (Type::EtherAddr, 48) => {
            let b = v.to_be_bytes();
            format!(
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                b[10], b[11], b[12], b[13], b[14], b[15]
            )
        }
        (Type::EtherType | Type::TcpFlag, _) => format!("0x{v:x}"),
        (Type::IfName, _) => {
            let name: String = v
                .to_be_bytes()
                .iter()
                .take_while(|b| **b != 0)
                .map(|b| char::from(*b))
                .collect();
            format!("\"{}\"", name.escape_default())
        }
        _ => v.to_string(),
    }
}
