//! `check FILE`: the ruleset's summary and the size of each program.

use std::path::PathBuf;

use bpf_builder::text;
use nft2bpf::check::tree::{Hook, Policy, Ruleset};
use nft2bpf::compile::program::Mode;
use nft2bpf::deploy::{self, Source};

use crate::common::{HookArg, device_for_compile, msg};

/// `check`'s options.
#[derive(clap::Args)]
pub struct Args {
    /// The ruleset file, as `nft -f` reads it.
    file: PathBuf,
    /// Where ingress chains would run: xdp or tcx-ingress.
    #[arg(long, value_enum, default_value = "xdp")]
    hook: HookArg,
}

/// Runs `check`.
pub fn run(a: &Args) -> Result<(), String> {
    let src = Source::read(&a.file).map_err(msg)?;
    let mut out = summary(&src.ruleset);
    let mut sizes = String::new();
    for (attach, dev) in deploy::targets(&src.ruleset, a.hook.ingress()) {
        let c = deploy::compile(
            &src,
            &src.ruleset,
            attach,
            &device_for_compile(&dev),
            Mode::Hook,
        )
        .map_err(msg)?;
        sizes.push_str(&format!(
            "program {}: {} instructions, {} maps\n",
            deploy::target_name(attach, &dev),
            c.insns(),
            c.maps()
        ));
    }
    // The totals stay the last line.
    let totals = out.split_off(out.trim_end().rfind('\n').map_or(0, |i| i + 1));
    out.push_str(&sizes);
    out.push_str(&totals);
    crate::common::out(out.as_bytes())
}

/// One line per base chain, then the totals.
fn summary(r: &Ruleset) -> String {
    let mut out = String::new();
    for (_, chain, base) in r.base_chains() {
        let table = &r.tables[chain.table].name;
        let hook = match base.hook {
            Hook::Ingress => "ingress",
            Hook::Egress => "egress",
        };
        let policy = match base.policy {
            Policy::Accept => "accept",
            Policy::Drop => "drop",
        };
        out.push_str(&format!(
            "table netdev {} chain {}: hook {hook} device {} priority {} policy {policy}, {} rules\n",
            text::escape(table),
            text::escape(&chain.name),
            text::escape(&base.devices.join(",")),
            base.priority,
            chain.rules.len()
        ));
    }
    let named = r.sets.values().filter(|s| s.name.is_some()).count();
    out.push_str(&format!(
        "{} tables, {} chains ({} base), {} rules, {} named sets\n",
        r.tables.len(),
        r.chains.len(),
        r.base_chains().count(),
        r.rules.len(),
        named
    ));
    out
}
