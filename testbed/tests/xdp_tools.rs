//! `testbed::xdp_tools` against Debian's real xdp-tools: programs loaded,
//! listed and unloaded by `xdp-loader` on veths in throw-away namespaces.
//! Needs root and xdp-tools; see `XdpTools::available` for what happens
//! without them. The two-program test also needs a kernel that lets
//! libxdp build its dispatcher (extension programs): on a kernel that
//! refuses them it runs in a VM (`testbed::vm`).

use std::time::Duration;

use testbed::xdp_tools::{self, LoadOptions, Mode, Role, XdpObjects, XdpTools};
use testbed::{Marker, Netns, VethPair, ethernet_frame, send_and_collect};

/// Long enough never to be hit on a working machine.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The EtherType the counter programs count (IEEE local experimental).
const ETHERTYPE: u16 = 0x88b5;

/// Sends `n` frames of EtherType 0x88b5 and one IPv4-typed frame from
/// `pair.a` to `pair.b` and checks they all arrive (XDP passed them).
fn send_through(pair: &VethPair, n: usize) {
    let marker = Marker::new().unwrap();
    let mut frames: Vec<Vec<u8>> = (0..n)
        .map(|_| ethernet_frame(pair.b.mac, pair.a.mac, ETHERTYPE, marker.as_bytes()))
        .collect();
    frames.push(ethernet_frame(
        pair.b.mac,
        pair.a.mac,
        testbed::ETHERTYPE_IPV4,
        marker.as_bytes(),
    ));
    let got = send_and_collect(&pair.a, &pair.b, &frames, &marker, TIMEOUT).unwrap();
    assert_eq!(got, frames);
}

#[test]
fn xdp_loader_loads_lists_and_unloads_one_program() {
    if !XdpTools::available("xdp-loader test") {
        return;
    }
    let objects = XdpObjects::new().unwrap();
    let object = objects.counter("xdp_one", 30).unwrap();
    let ns = Netns::new().unwrap();
    let pair = ns.veth_pair("va", "vb").unwrap();
    let tools = XdpTools::new(&ns, &pair.b);
    assert_eq!(tools.status().unwrap(), []);

    tools.load(&object, &LoadOptions::default()).unwrap();
    let status = tools.status().unwrap();
    // With libxdp's dispatcher: the dispatcher, then the program as its
    // component; without (the kernel refuses freplace): the program alone.
    let program = status.last().unwrap();
    assert_eq!(program.name, "xdp_one");
    assert_eq!(program.interface, "vb");
    if program.is_component() {
        assert_eq!(status.len(), 2);
        assert!(status[0].is_dispatcher());
        assert_eq!(
            status[0].role,
            Role::Attached {
                mode: "native".to_string()
            }
        );
        assert_eq!(program.priority(), Some(30));
    } else {
        assert_eq!(status.len(), 1);
        assert_eq!(
            program.role,
            Role::Attached {
                mode: "native".to_string()
            }
        );
    }

    send_through(&pair, 3);
    assert_eq!(xdp_tools::counts(program.id).unwrap(), [3, 1]);

    tools.unload(program.id).unwrap();
    assert_eq!(tools.status().unwrap(), []);
    assert_eq!(tools.leftover_pins(), Vec::<std::path::PathBuf>::new());
    // Nothing left to unload: xdp-loader says so with an error.
    assert!(tools.unload_all().is_err());
}

#[test]
fn xdp_loader_runs_two_programs_in_priority_order() {
    if !XdpTools::available("xdp-loader two-program test") {
        return;
    }
    let objects = XdpObjects::new().unwrap();
    let late = objects.counter("xdp_late", 40).unwrap();
    let early = objects.counter("xdp_early", 60).unwrap();
    // libxdp's dispatcher is made of extension programs.
    if !testbed::features::extensions_here_or_in_vm_with(
        "xdp_loader_runs_two_programs_in_priority_order",
        |vm| objects.vm_setup(vm),
    ) {
        return;
    }
    let ns = Netns::new().unwrap();
    let pair = ns.veth_pair("va", "vb").unwrap();
    let tools = XdpTools::new(&ns, &pair.b);
    let skb = |priority| LoadOptions {
        mode: Mode::Skb,
        priority,
        ..Default::default()
    };

    // The second one loaded runs first: --prio overrides its run config.
    tools.load(&late, &skb(None)).unwrap();
    tools.load(&early, &skb(Some(10))).unwrap();
    let status = tools.status().unwrap();
    let listed: Vec<(&str, Option<u32>)> = status
        .iter()
        .map(|e| (e.name.as_str(), e.priority()))
        .collect();
    assert_eq!(
        listed,
        [
            (xdp_tools::DISPATCHER_NAME, None),
            ("xdp_early", Some(10)),
            ("xdp_late", Some(40)),
        ]
    );
    assert_eq!(
        status[0].role,
        Role::Attached {
            mode: "skb".to_string()
        }
    );
    let dispatcher = status[0].id;
    let pins = tools.pin_dir(dispatcher);
    for slot in ["prog0-prog", "prog0-link", "prog1-prog", "prog1-link"] {
        assert!(
            pins.join(slot).exists(),
            "{} missing",
            pins.join(slot).display()
        );
    }

    // Both chain on XDP_PASS, so every frame goes through both.
    send_through(&pair, 2);
    assert_eq!(xdp_tools::counts(status[1].id).unwrap(), [2, 1]);
    assert_eq!(xdp_tools::counts(status[2].id).unwrap(), [2, 1]);

    // Removing the first leaves the other running behind a new dispatcher.
    tools.unload(status[1].id).unwrap();
    let after = tools.status().unwrap();
    assert_eq!(after.len(), 2);
    assert!(after[0].is_dispatcher());
    assert_ne!(after[0].id, dispatcher);
    assert_eq!(after[1].name, "xdp_late");
    assert_eq!(after[1].id, status[2].id);
    assert!(!pins.exists(), "{} left behind", pins.display());
    send_through(&pair, 1);
    assert_eq!(xdp_tools::counts(after[1].id).unwrap(), [3, 2]);

    tools.unload_all().unwrap();
    assert_eq!(tools.status().unwrap(), []);
    assert_eq!(tools.leftover_pins(), Vec::<std::path::PathBuf>::new());
}
