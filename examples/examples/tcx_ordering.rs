//! tcx ordering: three programs placed on a veth's ingress with different
//! anchors (tail, before a program by name with the ordering helper, after
//! a link), then the chain as `query` reports it and the order in which a
//! frame actually ran through it. Creates its own network namespace; run as
//! root: `cargo run -p examples --example tcx_ordering`.

use std::time::Duration;

use bpf_builder::attach::tcx::{self, Anchor, Hook, Place, Ref, TcxOptions};
use bpf_builder::map::MapSpec;
use bpf_builder::object::{Object, ProgramType};
use examples::net_progs;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ns = testbed::Netns::new()?;
    let pair = ns.veth_pair("va", "vb")?;

    let mut obj = Object::new();
    let trace = obj.add_map(MapSpec::array("trace", 8, 1))?;
    for (digit, name) in [(1, "first"), (2, "second"), (3, "third")] {
        obj.add_program(
            name,
            ProgramType::TcxIngress,
            net_progs::tracer(trace, digit),
        )?;
    }
    let loaded = obj.load()?;
    let prog = |name| loaded.program_by_name(name).expect("built above");

    let (_links, chain) = ns.run(|| -> Result<_, bpf_builder::attach::AttachError> {
        // "second" at the tail of an empty chain.
        let second = tcx::attach(
            "vb",
            Hook::Ingress,
            prog("second"),
            &TcxOptions::new().anchor(Anchor::Tail),
        )?;
        // "first" right before whatever is named "second", race-safe.
        let first = tcx::attach_placed(
            "vb",
            Hook::Ingress,
            prog("first"),
            &Place::BeforeName("second".into()),
        )?;
        // "third" right after the link that attached "second".
        let third = tcx::attach(
            "vb",
            Hook::Ingress,
            prog("third"),
            &TcxOptions::new().anchor(Anchor::After(Ref::Link(&second))),
        )?;
        let chain = tcx::query("vb", Hook::Ingress)?;
        Ok(([first, second, third], chain))
    })??;

    println!("tcx ingress chain of vb, revision {}:", chain.revision);
    println!("{:>4} {:>8} {:>8}  name", "pos", "prog id", "link id");
    for (i, e) in chain.entries.iter().enumerate() {
        let link = e.link_id.map_or("-".to_string(), |l| l.to_string());
        println!("{i:>4} {:>8} {link:>8}  {}", e.prog_id, e.name);
    }

    let marker = testbed::Marker::new()?;
    let f = net_progs::frame(pair.b.mac, pair.a.mac, 0, marker.as_bytes());
    testbed::send_and_collect(&pair.a, &pair.b, &[f], &marker, Duration::from_secs(2))?;
    let value = loaded
        .map(trace)
        .lookup(&0u32.to_ne_bytes())?
        .unwrap_or_default();
    let order = u64::from_ne_bytes(value[..8].try_into()?);
    println!(
        "a frame ran through the programs in the order {order:x} (1 first, 2 second, 3 third)"
    );
    Ok(())
}
