//! Compiling answers every expression with a program or a `CompileError`
//! (never a panic), for every target; and the generated XDP code, run by
//! the interpreter, gives the IR's verdict on a packet.
//!
//! Input: the expression, a NUL byte, the number of bytes the packet lost
//! to the snap length, then the captured bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pcap2bpf::engine::{Engine, Frame, RunOptions, Runner};
use pcap2bpf::{CompileOptions, LinkType, Tables, Target, compile};

fuzz_target!(|data: &[u8]| {
    let (expr, packet) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(expr) = std::str::from_utf8(expr) else {
        return;
    };
    let (cut, bytes) = packet.split_first().unwrap_or((&0, &[]));
    let packet = Frame::new(bytes, bytes.len() as u32 + u32::from(*cut));
    let tables = Tables::default();
    for link in [LinkType::En10mb, LinkType::Raw] {
        // XDP as `run` uses it (test-run metadata), XDP with fragment
        // support as `attach` may, tc, socket filters.
        for (target, xdp_frags) in [
            (Target::Xdp, false),
            (Target::Xdp, true),
            (Target::Tc, false),
            (Target::SocketFilter, false),
        ] {
            let test_run_meta = target == Target::Xdp && !xdp_frags;
            let opts = CompileOptions::new(link, target, &tables)
                .verdicts(2, 1)
                .test_run_meta(test_run_meta)
                .xdp_frags(xdp_frags)
                .netmask(Some(0xffff_ff00));
            let compiled = match compile(expr, &opts) {
                Ok(c) => c,
                Err(e) => {
                    let _ = e.render(expr);
                    return;
                }
            };
            if !test_run_meta {
                continue;
            }
            let want = compiled.ir.eval(&packet.data, packet.wire_len, &|_| None);
            let run = RunOptions::new(link, &tables)
                .engine(Engine::Interp)
                .netmask(Some(0xffff_ff00));
            let mut runner = Runner::new(expr, &run).expect("compiles as above");
            let got = runner.matches(packet).expect("the interpreter runs our code");
            assert_eq!(got, want, "{expr:?} on {packet:?}");
        }
    }
});
