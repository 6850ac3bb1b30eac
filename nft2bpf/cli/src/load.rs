//! `load FILE` and `unload`.

use std::path::PathBuf;

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
    /// tcx: put each new program first in its device's tcx chain.
    #[arg(long, conflicts_with_all = ["before", "after"])]
    first: bool,
    /// tcx: put each new program right before the program NAME (which
    /// must be in every tcx chain the ruleset goes to).
    #[arg(long, value_name = "NAME", conflicts_with = "after")]
    before: Option<String>,
    /// tcx: put each new program right after the program NAME (likewise).
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
    let src = Source::read(&a.file).map_err(msg)?;
    let tcx_place = match (a.first, &a.before, &a.after) {
        (true, _, _) => tcx::Place::Head,
        (_, Some(n), _) => tcx::Place::BeforeName(n.clone()),
        (_, _, Some(n)) => tcx::Place::AfterName(n.clone()),
        _ => tcx::Place::Tail,
    };
    let opts = LoadOptions {
        pin_root: a.root.pin_root.clone(),
        ingress: a.hook.ingress(),
        devices: (!a.iface.is_empty()).then(|| a.iface.clone()),
        tcx_place,
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
                })
            })
            .collect();
        out = json!({"programs": programs, "detached": report.detached}).to_string();
        out.push('\n');
    } else {
        for p in &report.programs {
            out.push_str(&format!(
                "{} {}: program {} link {}, {} instructions, {} maps{}\n",
                if p.replaced { "replaced" } else { "attached" },
                deploy::target_name(p.attach, &p.device),
                p.prog_id,
                p.link_id,
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
