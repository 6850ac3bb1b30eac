//! The runner over a filter with more verdicts than match and no match
//! (a firewall's): each packet's verdict, in the interpreter, the
//! compiled engine and the kernel, is the IR's.

use pktmatch::ir::{Ir, Verdict};
use pktmatch::run::{Engine, Frame, Runner};

/// IPv4 TCP: verdict 2; IPv4 otherwise (or too short for the protocol):
/// 3; ARP: no match; anything else, a frame too short for the EtherType
/// among them: 4 (a firewall's meaning of a short read).
const RULES: &str = "\
semantics exact
entry b0
v0 = load [12:2]
v1 = const 0x800
v2 = load [23:1]
v3 = const 0x6
v4 = const 0x806
b0: eq v0, v1 ? b1 : b2 short false
b1: eq v2, v3 ? verdict2 : verdict3 short false
b2: eq v0, v4 ? reject : verdict4 short false
";

fn frames() -> Vec<Vec<u8>> {
    let mut tcp = vec![0u8; 60];
    tcp[12..14].copy_from_slice(&[8, 0]);
    tcp[23] = 6;
    let mut udp = tcp.clone();
    udp[23] = 17;
    let mut arp = tcp.clone();
    arp[12..14].copy_from_slice(&[8, 6]);
    vec![
        tcp.clone(),
        udp,
        arp,
        tcp[..20].to_vec(),
        tcp[..10].to_vec(),
    ]
}

#[test]
fn every_verdict_comes_back_from_each_engine() {
    let ir = Ir::from_text(RULES).unwrap();
    assert_eq!(ir.verify(), Ok(()));
    let frames = frames();
    let packets: Vec<Frame<'_>> = frames.iter().map(|f| Frame::new(f, 60)).collect();
    let want = [
        Verdict(2),
        Verdict(3),
        Verdict::NO_MATCH,
        Verdict(3),
        Verdict(4),
    ];
    for (p, w) in packets.iter().zip(want) {
        assert_eq!(ir.run(p.data, p.wire_len, &|_| None), w);
    }
    let mut engines = vec![Engine::Interp, Engine::Compiled];
    if testbed::bpf_privileged("running the filter in the kernel") {
        engines.push(Engine::Kernel);
    }
    for engine in engines {
        let mut runner = Runner::new(ir.clone(), "rules", engine).unwrap();
        assert_eq!(runner.verdicts_all(&packets).unwrap(), want, "{engine:?}");
        for (p, w) in packets.iter().zip(want) {
            assert_eq!(runner.verdict(*p).unwrap(), w, "{engine:?}");
            assert_eq!(runner.matches(*p).unwrap(), w == Verdict::MATCH);
        }
    }
}
