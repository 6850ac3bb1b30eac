//! `load FILE` and `unload`.

use std::path::PathBuf;

use bpf_builder::attach::dispatcher::{Anchor, Placement};
use bpf_builder::attach::tcx;
use bpf_builder::text;
use nft2bpf::deploy::{self, LoadOptions, Source};
use serde_json::json;

use crate::common::{HookArg, PinRootArg, msg};

/// `load`'s options.
#[derive(clap::Args)]
pub struct Args {
    /// The ruleset file.
    file: PathBuf,
    /// Where ingress chains run: xdp or tcx-ingress (egress chains run
    /// at tcx egress).
    #[arg(long, value_enum, default_value = "xdp")]
    hook: HookArg,
    /// Run every base chain on these devices instead of the chains' own
    /// (repeatable).
    #[arg(short = 'i', value_name = "IF")]
    iface: Vec<String>,
    /// XDP: join the interface's XDP dispatcher (libxdp's, as xdp-loader
    /// and xdp-filter use) instead of attaching alone, so the firewall
    /// runs beside other programs: an accepted packet goes on to the next
    /// program, a dropped one goes no further. --first, --before and
    /// --after then place it in the dispatcher; a reload keeps its place.
    #[arg(long)]
    shared: bool,
    /// Put each new program first in its device's tcx chain (with
    /// --shared: in its XDP dispatcher).
    #[arg(long, conflicts_with_all = ["before", "after"])]
    first: bool,
    /// Put each new program right before the program NAME (which must be
    /// in every tcx chain, or with --shared every dispatcher, the ruleset
    /// goes to).
    #[arg(long, value_name = "NAME", conflicts_with = "after")]
    before: Option<String>,
    /// Put each new program right after the program NAME (likewise).
    #[arg(long, value_name = "NAME")]
    after: Option<String>,
    #[command(flatten)]
    root: PinRootArg,
    /// JSON output.
    #[arg(short = 'j')]
    json: bool,
}

/// Runs `load`.
pub fn run(a: &Args) -> Result<(), String> {
    if a.hook == HookArg::TcxEgress {
        return Err(
            "--hook says where ingress chains run (xdp or tcx-ingress); egress chains always \
             run at tcx egress"
                .into(),
        );
    }
    if a.shared && a.hook != HookArg::Xdp {
        return Err(format!(
            "--shared is for XDP: it joins the interface's XDP dispatcher, and tcx has no \
             dispatcher (tcx programs share a hook anyway: place them with --first, --before \
             or --after, without --shared); --hook {} asks for tcx",
            a.hook.attach().name()
        ));
    }
    let src = Source::read(&a.file).map_err(msg)?;
    // With --shared the place options are the dispatcher's; tcx programs
    // (of egress chains) then go last.
    let (tcx_place, shared) = if a.shared {
        let placement = match (a.first, &a.before, &a.after) {
            (true, _, _) => Placement::First,
            (_, Some(n), _) => Placement::Before(Anchor::Name(n.clone())),
            (_, _, Some(n)) => Placement::After(Anchor::Name(n.clone())),
            _ => Placement::Last,
        };
        (tcx::Place::Tail, Some(placement))
    } else {
        let place = match (a.first, &a.before, &a.after) {
            (true, _, _) => tcx::Place::Head,
            (_, Some(n), _) => tcx::Place::BeforeName(n.clone()),
            (_, _, Some(n)) => tcx::Place::AfterName(n.clone()),
            _ => tcx::Place::Tail,
        };
        (place, None)
    };
    let opts = LoadOptions {
        pin_root: a.root.pin_root.clone(),
        ingress: a.hook.ingress(),
        devices: (!a.iface.is_empty()).then(|| a.iface.clone()),
        tcx_place,
        shared,
    };
    let report = deploy::load(&src, &opts).map_err(msg)?;
    for n in &report.notes {
        crate::common::report(n);
    }
    let mut out = String::new();
    if a.json {
        let programs: Vec<_> = report
            .programs
            .iter()
            .map(|p| {
                json!({
                    "hook": p.attach.name(), "device": p.device, "prog_id": p.prog_id,
                    "link_id": p.link_id, "insns": p.insns, "maps": p.maps,
                    "replaced": p.replaced, "counters_carried": p.carried,
                    "sets_kept": p.sets_kept,
                    "dispatcher": p.dispatcher.as_ref().map(|(id, names)| json!({
                        "prog_id": id, "members": names,
                    })),
                })
            })
            .collect();
        out = json!({
            "programs": programs, "detached": report.detached, "sets_reset": report.sets_reset,
        })
        .to_string();
        out.push('\n');
    } else {
        for p in &report.programs {
            let how = match &p.dispatcher {
                Some((id, names)) => format!(
                    "in XDP dispatcher {id} (run order: {})",
                    names
                        .iter()
                        .map(|n| text::escape(n).into_owned())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => format!("link {}", p.link_id),
            };
            let kept = match p.sets_kept.len() {
                0 => String::new(),
                1 => ", 1 set kept".to_string(),
                n => format!(", {n} sets kept"),
            };
            out.push_str(&format!(
                "{} {}: program {} {how}, {} instructions, {} maps{}{kept}\n",
                match (p.replaced, p.dispatcher.is_some()) {
                    (true, _) => "replaced",
                    (false, true) => "joined",
                    (false, false) => "attached",
                },
                deploy::target_name(p.attach, &p.device),
                p.prog_id,
                p.insns,
                p.maps,
                if p.carried > 0 {
                    format!(", {} counters carried over", p.carried)
                } else {
                    String::new()
                }
            ));
        }
        for d in &report.detached {
            out.push_str(&format!("detached {}\n", text::escape(d)));
        }
        for r in &report.sets_reset {
            out.push_str(&format!("{}\n", text::escape(r)));
        }
    }
    crate::common::out(out.as_bytes())
}

/// `unload`'s options.
#[derive(clap::Args)]
pub struct UnloadArgs {
    #[command(flatten)]
    root: PinRootArg,
}

/// Runs `unload`.
pub fn unload(a: &UnloadArgs) -> Result<(), String> {
    let detached = deploy::unload(&a.root.pin_root).map_err(msg)?;
    let mut out = String::new();
    for d in &detached {
        out.push_str(&format!("detached {}\n", text::escape(d)));
    }
    crate::common::out(out.as_bytes())
}
