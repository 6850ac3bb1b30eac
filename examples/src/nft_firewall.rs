//! The example nftables ruleset, `nft/firewall.nft` (with
//! `nft/firewall_sets.nft`), through nft2bpf's library: read and
//! checked, lowered to the packet-match IR, built into a program, and
//! the frames the example sends through it.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use nft2bpf::compile::program::{Mode, Program, ProgramOptions, build};
use nft2bpf::compile::{Attach, Device, Lowered, lower};
use nft2bpf::deploy::{DeployError, Source};
use testbed::frame::{self, Ipv4, Mac, Tcp, tcp_flags};

/// The device the ruleset's base chains hook (`define wan`).
pub const WAN: &str = "veth0";
/// The device its `fwd to` sends DNS queries to (`define mirror`).
pub const MIRROR: &str = "veth1";
/// The MAC address the programs are built for when the device is not at
/// hand (`meta pkttype` at XDP compares a frame's destination with it).
pub const WAN_MAC: Mac = [0x02, 0, 0, 0, 0, 0x01];
/// The source MAC address of the example's frames.
pub const CLIENT_MAC: Mac = [0x02, 0, 0, 0, 0, 0x02];

/// The ruleset file.
pub fn ruleset_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("nft/firewall.nft")
}

/// Reads and checks the ruleset (and the file it includes).
pub fn check() -> Result<Source, DeployError> {
    Source::read(&ruleset_path())
}

/// Lowers the ruleset's chains for `attach` on [`WAN`] (whose MAC
/// address is `mac`) and builds the program.
pub fn compile(
    src: &Source,
    attach: Attach,
    mac: Mac,
    mode: Mode,
) -> Result<(Lowered, Program), nft2bpf::Error> {
    let lowered = lower(&src.ruleset, attach, &Device::named(WAN).with_mac(mac))?;
    let program = build(&lowered, &ProgramOptions::new(mode).source(&src.map))?;
    Ok((lowered, program))
}

/// Frames for the firewall, from [`CLIENT_MAC`] to `dst`, each with what
/// it is and what the firewall does with it (as nft decides).
pub fn frames(dst: Mac) -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let v4 = |src: [u8; 4], dst_ip: [u8; 4], proto: u8, l4: Vec<u8>| {
        let ip = Ipv4::new(src.into(), dst_ip.into(), proto).build(&l4);
        frame::ethernet_frame(dst, CLIENT_MAC, 0x0800, &ip)
    };
    let tcp = |src: [u8; 4], dst_ip: [u8; 4], dport: u16| {
        let (s, d) = (IpAddr::from(src), IpAddr::from(dst_ip));
        v4(
            src,
            dst_ip,
            6,
            Tcp::new(40000, dport, tcp_flags::SYN).build(s, d, &[]),
        )
    };
    let client = [203, 0, 113, 50];
    let server = [10, 0, 0, 1];
    let dns = frame::udp(
        Ipv4Addr::from(client).into(),
        Ipv4Addr::from(server).into(),
        40000,
        53,
        b"query",
    );
    let arp = [0u8; 28];
    let mut spoofed = tcp(client, server, 80);
    spoofed[6..12].copy_from_slice(&[0; 6]);
    vec![
        (
            "ARP",
            "accept",
            frame::ethernet_frame(dst, CLIENT_MAC, 0x0806, &arp),
        ),
        ("a source MAC of zeros", "drop", spoofed),
        ("TCP to port 445", "drop", tcp(client, server, 445)),
        (
            "TCP from 192.0.2.9",
            "drop",
            tcp([192, 0, 2, 9], server, 80),
        ),
        (
            "SSH from the admin net",
            "accept",
            tcp([10, 10, 1, 1], server, 22),
        ),
        ("SSH from elsewhere", "accept", tcp(client, server, 22)),
        ("TCP to port 8080", "accept", tcp(client, server, 8080)),
        ("TCP to port 23", "drop", tcp(client, server, 23)),
        ("DNS query", "fwd to veth1", v4(client, server, 17, dns)),
        (
            "ICMP echo request",
            "accept",
            v4(client, server, 1, frame::icmp4(8, 0, [0, 1, 0, 1], b"ping")),
        ),
        (
            "ICMP timestamp request",
            "drop",
            v4(
                client,
                server,
                1,
                frame::icmp4(13, 0, [0, 1, 0, 1], &[0; 12]),
            ),
        ),
    ]
}
