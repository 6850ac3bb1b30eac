//! nft2bpf's library flow on the example ruleset `nft/firewall.nft`:
//! check it, lower its ingress chains to the packet-match IR, build the
//! XDP program, load it, test-run a few frames and print each decision
//! with the rule that made it. Run as root:
//! `cargo run -p examples --example nft_firewall`.

use bpf_builder::run::TestRun;
use examples::nft_firewall::{self, WAN, WAN_MAC};
use nft2bpf::compile::program::{Mode, ProgramOptions, build};
use nft2bpf::compile::{Attach, Device, lower};
use nft2bpf::deploy::{self, Meta, RulePos};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Check: parse the file and its include, run nft's checks.
    let src = nft_firewall::check()?;
    // Lower: the ingress chains on the device, as one IR whose verdicts
    // number the decisions.
    let device = Device::named(WAN).with_mac(WAN_MAC);
    let lowered = lower(&src.ruleset, Attach::Xdp, &device).map_err(|e| e.render(&src.map))?;
    // Build: an XDP program that returns the decision's number (for
    // test runs; `Mode::Hook` passes, drops or redirects instead).
    let program =
        build(&lowered, &ProgramOptions::new(Mode::TestRun)).map_err(|e| e.render(&src.map))?;
    println!(
        "{} on {WAN}: {} IR blocks, {} instructions, {} maps",
        Attach::Xdp.name(),
        lowered.ir.blocks.len(),
        program.object.layout(program.prog)?.insns.len(),
        program.object.maps().len()
    );
    // Load (the verifier checks it) and write the maps' first contents:
    // the named sets' elements, the counters' initial values.
    let loaded = program.object.load()?;
    program
        .initialize(&loaded, &lowered, &src.ruleset, &|_| None)
        .map_err(|e| e.render(&src.map))?;
    // Run frames through it and say what decided.
    let meta = Meta::new(
        src.name(),
        &src.ruleset,
        deploy::tables(&src.ruleset, &src.ast),
        &lowered,
    );
    let prog = loaded.program(program.prog);
    for (what, _, frame) in nft_firewall::frames(WAN_MAC) {
        let n = prog.test_run(&TestRun::new(&frame))?.retval as usize;
        let d = &meta.decisions[n];
        let why = match (&d.chain, d.rule) {
            (Some((table, chain)), Some(rule)) => {
                let pos = RulePos {
                    table: table.clone(),
                    chain: chain.clone(),
                    rule,
                };
                let text = meta.rule_text(&pos).unwrap_or_default();
                format!("{}: {text}", meta.decided_by(n).unwrap_or_default())
            }
            _ => meta
                .decided_by(n)
                .unwrap_or_else(|| "every chain accepted it".into()),
        };
        println!("{what:<24} -> {:<13} ({why})", d.outcome);
    }
    Ok(())
}
