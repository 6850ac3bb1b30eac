//! Every expression of the test sets, compiled for every target, passes
//! the kernel verifier.

mod common;

use common::*;
use pcap2bpf::{CompileOptions, LinkType, Target, compile};

fn expressions() -> Vec<(LinkType, String)> {
    let mut v: Vec<(LinkType, String)> = testdata_text("pcap-filter/accept.tsv")
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter_map(|(l, e)| {
            let link = match l {
                "EN10MB" => LinkType::En10mb,
                "RAW" => LinkType::Raw,
                "LINUX_SLL" => LinkType::LinuxSll,
                "LINUX_SLL2" => LinkType::LinuxSll2,
                _ => return None,
            };
            Some((link, e.to_string()))
        })
        .collect();
    v.extend(
        OUR_EXPRESSIONS
            .iter()
            .map(|e| (LinkType::En10mb, e.to_string())),
    );
    v
}

#[test]
fn every_program_passes_the_verifier() {
    let tables = tables();
    let mut loaded = 0;
    let mut refused = Vec::new();
    let mut perm = false;
    for (link, expr) in expressions() {
        // (target, test-run mode, XDP fragment support)
        for (target, test_run_meta, xdp_frags) in [
            (Target::Xdp, false, false),
            (Target::Xdp, true, false),
            (Target::Xdp, false, true),
            (Target::Tc, false, false),
            (Target::SocketFilter, false, false),
        ] {
            let opts = CompileOptions::new(link, target, &tables)
                .verdicts(2, 1)
                .test_run_meta(test_run_meta)
                .xdp_frags(xdp_frags)
                .netmask(Some(0xffff_ff00));
            // What the front end or the target refuses is an error, not a
            // program; the differential test accounts for those.
            let Ok(c) = compile(&expr, &opts) else {
                continue;
            };
            match c.object.load() {
                Ok(_) => loaded += 1,
                Err(e) => {
                    let m = e.to_string();
                    if m.contains("ermission") {
                        perm = true;
                        break;
                    }
                    refused.push(format!("{target:?} meta={test_run_meta} {expr:?}: {m}"));
                }
            }
        }
    }
    if perm {
        return testbed::skip("no permission to load BPF programs");
    }
    eprintln!("{loaded} programs loaded");
    assert!(refused.is_empty(), "{}", refused.join("\n"));
    assert!(loaded > 1000);
}
