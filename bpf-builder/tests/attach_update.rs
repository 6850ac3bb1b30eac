//! `BPF_LINK_UPDATE` while a bounded stream flows: every frame is handled
//! by exactly one of the old and the new program, and none is lost.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bpf_builder::attach::xdp::{self, XdpMode};
use bpf_builder::map::MapSpec;
use bpf_builder::object::{Object, ProgramType};
use common::*;
use testbed::{Marker, Netns};

const FRAMES: u32 = 2000;
const CHUNK: u32 = 50;

#[test]
fn link_update_swaps_programs_without_losing_or_doubling_a_frame() {
    if !testbed::privileged("XDP link update test") {
        return;
    }
    let prefix = "tu1_";
    {
        let ns = Netns::new().unwrap();
        let pair = ns.veth_pair("va", "vb").unwrap();
        let mut obj = Object::new();
        let counts = obj.add_map(MapSpec::array("counts", 8, 2)).unwrap();
        obj.add_program(
            "tu1_old",
            ProgramType::Xdp,
            xdp_action(XDP_PASS, Some((counts, 0))),
        )
        .unwrap();
        obj.add_program(
            "tu1_new",
            ProgramType::Xdp,
            xdp_action(XDP_PASS, Some((counts, 1))),
        )
        .unwrap();
        let loaded = obj.load().unwrap();
        let old = loaded.program_by_name("tu1_old").unwrap();
        let new = loaded.program_by_name("tu1_new").unwrap();
        let counts = loaded.map(counts);
        let link = ns
            .run(|| xdp::attach("vb", old, XdpMode::Auto))
            .unwrap()
            .unwrap();

        let marker = Marker::new().unwrap();
        let mut rx = pair.b.socket().unwrap();
        rx.set_incoming_only(true).unwrap();
        let tx = pair.a.socket().unwrap();
        let received = AtomicUsize::new(0);
        let seen = std::thread::scope(|s| {
            let receiver = s.spawn(|| {
                let mut seqs = BTreeSet::new();
                let mut buf = vec![0u8; 2048];
                while let Some(n) = rx.recv(&mut buf, TIMEOUT).unwrap() {
                    if marker.is_in(&buf[..n]) {
                        let seq = u32::from_ne_bytes(buf[14..18].try_into().unwrap());
                        assert!(seqs.insert(seq), "frame {seq} received twice");
                        received.fetch_add(1, Ordering::SeqCst);
                        if seqs.len() == FRAMES as usize {
                            break;
                        }
                    }
                }
                seqs
            });
            let handled = || read_u64(counts, 0) + read_u64(counts, 1);
            for chunk in 0..FRAMES / CHUNK {
                for i in chunk * CHUNK..(chunk + 1) * CHUNK {
                    let mut payload = i.to_ne_bytes().to_vec();
                    payload.extend_from_slice(marker.as_bytes());
                    payload.resize(46, 0);
                    let f =
                        testbed::ethernet_frame(pair.b.mac, pair.a.mac, ETHERTYPE_TEST, &payload);
                    tx.send(&f).unwrap();
                }
                if chunk == FRAMES / CHUNK / 2 {
                    // Swap while this chunk is still in flight.
                    link.update(new).unwrap();
                    continue;
                }
                // Pace the stream so no queue on the way overflows: wait
                // until the programs and the receiver have seen this chunk.
                let sent = u64::from((chunk + 1) * CHUNK);
                let deadline = Instant::now() + TIMEOUT;
                while (handled() < sent || (received.load(Ordering::SeqCst) as u64) < sent)
                    && Instant::now() < deadline
                {
                    std::thread::yield_now();
                }
            }
            receiver.join().unwrap()
        });
        let by_old = read_u64(counts, 0);
        let by_new = read_u64(counts, 1);
        assert_eq!(seen.len(), FRAMES as usize, "frames lost");
        assert_eq!(
            by_old + by_new,
            u64::from(FRAMES),
            "old {by_old} + new {by_new}"
        );
        assert!(by_old >= u64::from(FRAMES / 2), "old handled {by_old}");
        assert!(
            by_new >= u64::from(FRAMES / 2 - CHUNK),
            "new handled {by_new}"
        );
        assert_eq!(link.program_id().unwrap(), Some(new.info().unwrap().id));
    }
    assert_nothing_left(prefix);
}
