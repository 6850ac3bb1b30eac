//! nft decides: the same rulesets go into nft (testbed's `NftBed`, a
//! netdev ingress chain on `veth0` in a namespace) and into our XDP
//! program, the same frames (testbed's `firewall_frames`: tagged and
//! untagged, IPv4 with options, IPv6 with extension headers, fragments,
//! short and malformed frames) go through both, and every frame's fate
//! must be the same.
//!
//! Our programs run in `BPF_PROG_TEST_RUN` and return the number of
//! their decision.

use std::path::Path;

use bpf_builder::insn::Reg;
use bpf_builder::object::Object;
use bpf_builder::run::TestRun;
use nft2bpf::compile::{Attach, Device, Lowered, Outcome};
use nft2bpf::syntax::MemLoader;
use nft2bpf::{SourceMap, compile};
use pktmatch::EmitOptions;
use testbed::nft::Outcome as NftOutcome;
use testbed::{NftBed, firewall_frames};

/// Compiles `text` for `veth0`'s XDP hook.
fn lower(text: &str, mac: [u8; 6]) -> Lowered {
    let mut map = SourceMap::new();
    let file = map.add("diff.nft", None, text, None);
    let rs = nft2bpf::check_ruleset(&mut map, file, &mut MemLoader::new())
        .unwrap_or_else(|e| panic!("{}", e.render(&map)));
    let device = Device::named(testbed::nft::DEVICE).with_mac(mac);
    compile::lower(&rs, Attach::Xdp, &device).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Runs the frames through the lowered program in the kernel: each
/// frame's outcome as the bed names it.
fn our_outcomes(l: &Lowered, frames: &[Vec<u8>]) -> Vec<NftOutcome> {
    let code = pktmatch::emit_program(
        &l.ir,
        &EmitOptions::new(pktmatch::Target::Xdp),
        "",
        |a, v| {
            a.mov32(Reg::R0, v.0 as i32);
            a.exit();
        },
        pktmatch::codegen::no_actions,
    )
    .expect("code");
    let mut object = Object::new();
    let prog = object
        .add_program("nft_diff", bpf_builder::object::ProgramType::Xdp, code)
        .expect("a program");
    let loaded = object.load().unwrap_or_else(|e| panic!("{}\n{e}", l.ir));
    let program = loaded.program(prog);
    frames
        .iter()
        .map(|f| {
            let out = program.test_run(&TestRun::new(f)).expect("a test run");
            let d = l.decisions.get(out.retval as usize).expect("a decision");
            if out.retval == 0 {
                return NftOutcome::NotReached;
            }
            match &d.outcome {
                Outcome::Accept => NftOutcome::Accept,
                Outcome::Drop => NftOutcome::Drop,
                Outcome::Fwd(dev) if dev == testbed::nft::FORWARD_DEVICE => {
                    NftOutcome::Forward(testbed::nft::FORWARD_DEVICE)
                }
                Outcome::Fwd(dev) if dev == testbed::nft::DEVICE => {
                    NftOutcome::Forward(testbed::nft::DEVICE)
                }
                Outcome::Fwd(_) => NftOutcome::Drop,
            }
        })
        .collect()
}

/// The ruleset of one match: frames it matches are dropped.
fn drop_if(m: &str) -> String {
    format!(
        "table netdev t {{\n\tchain c {{\n\t\ttype filter hook ingress device \"{}\" priority 0; policy accept;\n\t\t{m} drop\n\t}}\n}}\n",
        testbed::nft::DEVICE
    )
}

/// Compares the fates of `frames` under `text`; a line per difference.
fn compare(bed: &mut NftBed, text: &str, what: &str, frames: &[Vec<u8>]) -> Vec<String> {
    if let Err(e) = bed.load(text) {
        return vec![format!("{what}: nft refuses it: {e}")];
    }
    let theirs = bed.outcomes(frames).expect("nft's outcomes");
    let l = lower(text, bed.device().mac);
    let ours = our_outcomes(&l, frames);
    let mut diffs = Vec::new();
    for (i, (a, b)) in theirs.iter().zip(&ours).enumerate() {
        if a != b {
            diffs.push(format!(
                "{what}: frame {i} ({}): nft {a:?}, nft2bpf {b:?}\n    {}",
                frames[i].len(),
                bpf_builder::text::hex_bytes(&frames[i][..frames[i].len().min(80)])
            ));
        }
    }
    diffs
}

#[test]
fn every_match_decides_as_nft_does() {
    if !NftBed::available("comparing verdicts with nft") {
        return;
    }
    let mut bed = NftBed::new().expect("an nft test bed");
    let frames = firewall_frames(1);
    let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rulesets/diff/matches.txt");
    let text = std::fs::read_to_string(&list).expect("the match list");
    let mut diffs = Vec::new();
    let mut n = 0;
    for m in text.lines().map(str::trim) {
        if m.is_empty() || m.starts_with('#') {
            continue;
        }
        n += 1;
        diffs.extend(compare(&mut bed, &drop_if(m), m, &frames));
    }
    assert!(n > 100, "only {n} matches");
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}
