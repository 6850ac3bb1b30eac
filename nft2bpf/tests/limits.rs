//! Past what one hook can run: more rules than the 33 programs the
//! kernel's tail calls chain hold give one error, at the first rule that
//! does not fit, that says what to do instead. (Rules of one shape fold
//! into a classifier that fits one program: the error is the plain
//! chain's, classifiers off.)

use nft2bpf::SourceMap;
use nft2bpf::compile::{Attach, Device, LowerOptions};
use nft2bpf::syntax::MemLoader;

#[test]
fn rules_past_the_programs_a_hook_can_chain_are_an_error_at_the_first_that_does_not_fit() {
    let rules: Vec<String> = (0..60_000u32)
        .map(|i| {
            format!(
                "\t\tip saddr 10.{}.{}.{} drop\n",
                i >> 16,
                (i >> 8) & 0xff,
                i & 0xff
            )
        })
        .collect();
    let text = format!(
        "table netdev t {{\n\tchain c {{\n\t\ttype filter hook ingress device \"eth0\" priority 0;\n{}\t}}\n}}\n",
        rules.concat()
    );
    let mut map = SourceMap::new();
    let file = map.add("many.nft", None, &text, None);
    let ruleset = nft2bpf::check_ruleset(&mut map, file, &mut MemLoader::new())
        .unwrap_or_else(|e| panic!("{}", e.render(&map)));
    let device = Device::named("eth0");
    let folded = nft2bpf::compile::lower(&ruleset, Attach::Xdp, &device)
        .unwrap_or_else(|e| panic!("{}", e.render(&map)));
    assert!(folded.more.is_empty(), "one classifier, one program");
    let plain = LowerOptions { classifiers: false };
    let err = nft2bpf::compile::lower_with(&ruleset, Attach::Xdp, &device, plain)
        .expect_err("60,000 rules do not fit 33 programs");
    let rendered = err.render(&map);
    assert!(
        rendered.contains(
            "error: the rules of this hook need more than 33 programs (the kernel follows at \
             most 33 tail calls): put values in sets, which are maps, instead of rules"
        ),
        "{rendered}"
    );
    // At a rule: its line, the rule under the caret.
    let line: usize = rendered
        .split(':')
        .nth(1)
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("{rendered}"));
    assert!((100..60_000).contains(&line), "{rendered}");
    assert!(rendered.contains("\tip saddr 10."), "{rendered}");
}

/// Rules that take several programs load at every hook: the programs
/// after the first have names the kernel takes (at most 15 bytes; the
/// second program at tcx ingress was `nft_tcx_ingress_1`, and refused).
#[test]
fn rules_in_several_programs_load_at_every_hook() {
    use nft2bpf::compile::program::{Mode, ProgramOptions, build};
    if !testbed::bpf_privileged("loading rules chained by tail calls") {
        return;
    }
    let rules: Vec<String> = (0..5_000u32)
        .map(|i| format!("\t\tip saddr 10.0.{}.{} counter drop\n", i >> 8, i & 0xff))
        .collect();
    for (attach, hook) in [
        (Attach::Xdp, "ingress"),
        (Attach::TcxIngress, "ingress"),
        (Attach::TcxEgress, "egress"),
    ] {
        let text = format!(
            "table netdev t {{\n\tchain c {{\n\t\ttype filter hook {hook} device \"eth0\" priority 0;\n{}\t}}\n}}\n",
            rules.concat()
        );
        let mut map = SourceMap::new();
        let file = map.add("many.nft", None, &text, None);
        let ruleset = nft2bpf::check_ruleset(&mut map, file, &mut MemLoader::new())
            .unwrap_or_else(|e| panic!("{}", e.render(&map)));
        let plain = LowerOptions { classifiers: false };
        let lowered = nft2bpf::compile::lower_with(&ruleset, attach, &Device::named("eth0"), plain)
            .unwrap_or_else(|e| panic!("{}", e.render(&map)));
        assert!(!lowered.more.is_empty(), "{attach:?}: several programs");
        let program = build(&lowered, &ProgramOptions::new(Mode::Hook))
            .unwrap_or_else(|e| panic!("{}", e.render(&map)));
        if let Err(e) = program.object.load() {
            panic!("{attach:?}: {e}");
        }
    }
}
