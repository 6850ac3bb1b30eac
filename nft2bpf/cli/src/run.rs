//! `run -r CAPTURE FILE`: the ruleset over every packet of a capture, in
//! the kernel (`BPF_PROG_TEST_RUN`, the program returning its decision's
//! number), or in pktmatch's interpreter when the kernel is out of reach
//! (no privilege to load programs).

use std::path::PathBuf;

use bpf_builder::load::Loaded;
use bpf_builder::run::TestRun;
use nft2bpf::compile::program::Mode;
use nft2bpf::compile::{Action, Lowered};
use nft2bpf::deploy::{self, Meta, Source};
use pcapfile::Packet;
use serde_json::json;

use crate::common::{HookArg, device_for_compile, msg};

/// `run`'s options.
#[derive(clap::Args)]
pub struct Args {
    /// The capture: pcap or pcapng, Ethernet link type.
    #[arg(short = 'r', value_name = "CAPTURE")]
    capture: PathBuf,
    /// The ruleset file.
    file: PathBuf,
    /// The hook whose chains run.
    #[arg(long, value_enum, default_value = "xdp")]
    hook: HookArg,
    /// The device (needed when the hook's chains name several).
    #[arg(short = 'i', value_name = "IF")]
    iface: Option<String>,
    /// Print only `1` (accepted) or `0` (dropped or forwarded) per packet.
    #[arg(long)]
    verdicts: bool,
    /// JSON output, one object a packet.
    #[arg(short = 'j', conflicts_with = "verdicts")]
    json: bool,
    /// Use the interpreter even when the kernel could run the program.
    #[arg(long)]
    interpreter: bool,
}

/// LINKTYPE_ETHERNET.
const ETHERNET: u32 = 1;
/// The shortest frame a hook sees (an Ethernet header).
const ETH_HLEN: usize = 14;

/// Runs `run`.
pub fn run(a: &Args) -> Result<(), String> {
    let src = Source::read(&a.file).map_err(msg)?;
    let (rs, dev) = crate::compile::ruleset_on(&src, a.hook, a.iface.as_deref())?;
    let capture = pcapfile::read(&a.capture).map_err(|e| e.to_string())?;
    if capture.link != ETHERNET {
        return Err(format!(
            "{}: {}: only Ethernet captures can run (XDP and tc see Ethernet frames)",
            a.capture.display(),
            pcapfile::linktype_name(capture.link)
        ));
    }
    let c = deploy::compile(
        &src,
        &rs,
        a.hook.attach(),
        &device_for_compile(&dev),
        Mode::TestRun,
    )
    .map_err(msg)?;
    let loaded = if a.interpreter {
        None
    } else {
        match c.load(&rs) {
            Ok(l) => Some(l),
            Err(e) if e.missing_privilege() => {
                crate::common::report(&format!(
                    "cannot load programs here ({e}); running the interpreter instead"
                ));
                None
            }
            Err(e) => return Err(msg(e)),
        }
    };
    let meta = Meta::new(src.name(), &rs, deploy::tables(&rs, &src.ast), &c.lowered);
    let mut interp = Interpreter::new(&c.lowered);
    let mut out = String::new();
    for (i, p) in capture.packets.iter().enumerate() {
        // Decision 0 of every program: a frame shorter than an Ethernet
        // header, which no hook sees (and test runs refuse).
        let (n, rule) = match &loaded {
            _ if p.data.len() < ETH_HLEN => (0, None),
            Some(l) => {
                let n = kernel(l, &c, p)?;
                let rule = c
                    .lowered
                    .decisions
                    .get(n)
                    .and_then(|d| c.program.classified_rule(l, &c.lowered, d));
                (n, rule)
            }
            None => interp.run(p),
        };
        let Some(d) = meta.decisions.get(n) else {
            return Err(format!(
                "packet {}: the program returned {n}, no decision",
                i + 1
            ));
        };
        // The rule's position in its chain (a classifier's decision names
        // the run; the lookup found the rule).
        let rule = rule.and_then(|r| {
            rs.chains[rs.rules[r].chain]
                .rules
                .iter()
                .position(|&x| x == r)
        });
        if a.verdicts {
            out.push_str(if d.outcome == "accept" { "1\n" } else { "0\n" });
            continue;
        }
        let by = match (&d.chain, rule) {
            (Some((t, ch)), Some(r)) => Some(format!("{t}/{ch} rule {r}")),
            _ => meta.decided_by(n),
        };
        let text = match (&d.chain, rule) {
            (Some((t, ch)), Some(r)) => meta.rule_text(&deploy::RulePos {
                table: t.clone(),
                chain: ch.clone(),
                rule: r,
            }),
            _ => None,
        };
        if a.json {
            let v = json!({
                "packet": i + 1, "verdict": d.outcome,
                "table": d.chain.as_ref().map(|c| &c.0), "chain": d.chain.as_ref().map(|c| &c.1),
                "rule": rule, "text": text,
            });
            out.push_str(&v.to_string());
            out.push('\n');
        } else {
            let why = match (by, text) {
                (Some(by), Some(t)) => format!(" ({by}: {t})"),
                (Some(by), None) => format!(" ({by})"),
                (None, _) if n == 0 => " (the hook never sees it)".to_string(),
                (None, _) => " (every chain accepted it)".to_string(),
            };
            out.push_str(&format!("{}: {}{why}\n", i + 1, d.outcome));
        }
    }
    crate::common::out(crate::common::escape_text(&out).as_bytes())
}

/// The decision of the loaded test-run program for `p`.
fn kernel(l: &Loaded, c: &deploy::Compiled, p: &Packet) -> Result<usize, String> {
    let prog = l.program(c.program.prog);
    let r = prog
        .test_run(&TestRun::new(&p.data))
        .map_err(|e| format!("test run: {e}"))?;
    Ok(r.retval as usize)
}

/// pktmatch's interpreter over the IR, with the state of quotas (limits
/// always hold: no clock).
struct Interpreter<'a> {
    l: &'a Lowered,
    quotas: std::collections::HashMap<u32, u64>,
}

impl<'a> Interpreter<'a> {
    fn new(l: &'a Lowered) -> Self {
        Interpreter {
            l,
            quotas: Default::default(),
        }
    }

    /// The decision's number, and the rule that decided.
    fn run(&mut self, p: &Packet) -> (usize, Option<nft2bpf::check::tree::RuleId>) {
        let len = u64::from(self.l.attach.skb_len(&p.data, p.wire_len));
        let actions = &self.l.actions;
        let quotas = &mut self.quotas;
        let mut act = |n: u32| match actions.get(n as usize) {
            Some(Action::Quota {
                slot,
                over,
                bytes,
                used,
            }) => {
                let consumed = quotas.entry(*slot).or_insert(*used);
                *consumed += len;
                (*consumed > *bytes) == *over
            }
            _ => true,
        };
        let (v, classified) = self.l.run_classified(&p.data, p.wire_len, &mut act);
        let rule = self.l.decision(v).and_then(|d| match classified {
            Some(value) => self.l.classified_rule(d, value),
            None => d.rule,
        });
        (v.0 as usize, rule)
    }
}
