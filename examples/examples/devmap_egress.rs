//! devmap egress: an ingress XDP program redirects frames through a devmap
//! whose entries carry their own egress programs. Entry 0 sends out of
//! `o1a` and rewrites the source MAC; entry 1 sends out of `o2a` and drops.
//! Then entry 0's program is replaced live, as a hosting tool replaces one
//! VM's egress policy: a new program is loaded into the running object
//! (using its maps, no reload) and swapped into the entry.
//! Creates its own network namespace; run as root:
//! `cargo run -p examples --example devmap_egress`.

use std::time::Duration;

use bpf_builder::attach::{self, xdp};
use bpf_builder::ctx::XdpAction;
use bpf_builder::map::MapSpec;
use bpf_builder::object::{Object, ProgramSpec, ProgramType};
use examples::net_progs;

fn mac(m: &[u8]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ns = testbed::Netns::new()?;
    let ing = ns.veth_pair("ia", "ib")?;
    let out1 = ns.veth_pair("o1a", "o1b")?;
    let out2 = ns.veth_pair("o2a", "o2b")?;

    let mut obj = Object::new();
    let ports = obj.add_map(MapSpec::devmap("ports", 4))?;
    let ingress = obj.add_program("ingress", ProgramType::Xdp, net_progs::redirect(ports))?;
    let rewrite = obj.add_program(
        "rewrite_src",
        ProgramType::XdpDevmap,
        net_progs::rewrite_src([0x02, 0, 0, 0, 0, 0xaa]),
    )?;
    let drop = obj.add_program(
        "drop_all",
        ProgramType::XdpDevmap,
        net_progs::verdict(XdpAction::Drop),
    )?;
    let mut loaded = obj.load()?;

    // Generic mode: in driver mode, a veth drops frames redirected to a
    // peer that has no XDP program of its own.
    let _link = ns.run(|| -> Result<_, attach::AttachError> {
        let ports = loaded.map(ports);
        attach::set_devmap_entry(ports, 0, "o1a", Some(loaded.program(rewrite)))?;
        attach::set_devmap_entry(ports, 1, "o2a", Some(loaded.program(drop)))?;
        // Generic mode, on purpose: in driver mode (what `Auto` picks on a
        // veth) frames redirected out of o1a/o2a would be dropped silently
        // by their peers o1b/o2b, which have no XDP program of their own.
        xdp::attach("ib", loaded.program(ingress), xdp::XdpMode::Generic)
    })??;
    for key in 0..2 {
        if let Some(e) = attach::devmap_entry(loaded.map(ports), key)? {
            println!(
                "devmap entry {key}: ifindex {} egress program id {:?}",
                e.ifindex, e.prog_id
            );
        }
    }

    let marker = testbed::Marker::new()?;
    let send = |key: u16, rx: &testbed::Link| -> Result<(), Box<dyn std::error::Error>> {
        let f = net_progs::frame(ing.b.mac, ing.a.mac, key, marker.as_bytes());
        println!(
            "sent key {key} from {} with source MAC {}",
            ing.a.name,
            mac(&f[6..12])
        );
        let got = testbed::send_and_collect(&ing.a, rx, &[f], &marker, Duration::from_secs(1))?;
        match got.first() {
            Some(g) => println!(
                "  {} received it with source MAC {}",
                rx.name,
                mac(&g[6..12])
            ),
            None => println!(
                "  {} received nothing (dropped by the entry's program)",
                rx.name
            ),
        }
        Ok(())
    };
    send(0, &out1.b)?;
    send(1, &out2.b)?;

    // Entry 0's new policy: a program added to the loaded object and
    // swapped into the entry; entry 1 and the ingress program go on.
    let replacement = loaded.load_program(ProgramSpec::new(
        "rewrite_src2",
        ProgramType::XdpDevmap,
        net_progs::rewrite_src([0x02, 0, 0, 0, 0, 0xbb]),
    ))?;
    ns.run(|| {
        let program = loaded.program(replacement);
        attach::set_devmap_entry(loaded.map(ports), 0, "o1a", Some(program))
    })??;
    println!("replaced entry 0's egress program with rewrite_src2");
    send(0, &out1.b)?;
    Ok(())
}
