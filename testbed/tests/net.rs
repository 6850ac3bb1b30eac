//! The harness against the real kernel: namespaces, veths, packet sockets.
//! Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_NET_RAW); see
//! `testbed::privileged` for what happens without it.

use std::net::{Ipv4Addr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use bpf_builder::sys::netns::if_nametoindex;
use testbed::{Error, Marker, Netns, ethernet_frame, send_and_collect, udp4_frame};

/// Long enough never to be hit on a working machine; the tests do not
/// depend on how long anything takes.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Names of the namespaces `ip netns list` shows (without " (id: N)").
fn netns_list() -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(out.status.success(), "ip netns list failed: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// `ip netns exec NS cat PATH`, trimmed: reads /proc/sys as the namespace
/// sees it, independently of this crate's own namespace switching.
fn exec_cat(ns: &str, path: &str) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "cat", path])
        .output()
        .unwrap();
    assert!(out.status.success(), "cat {path} in {ns} failed: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn frames_cross_a_veth_pair_unchanged() {
    if !testbed::privileged("veth traffic test") {
        return;
    }
    let ns = Netns::new().unwrap();
    let pair = ns.veth_pair("va", "vb").unwrap();
    assert_eq!(pair.a.netns, ns.name());
    assert_ne!(pair.a.mac, pair.b.mac);
    let marker = Marker::new().unwrap();
    let udp = udp4_frame(
        pair.a.mac,
        pair.b.mac,
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
        1234,
        5678,
        marker.as_bytes(),
    )
    .unwrap();
    // A non-IP frame (local experimental EtherType) to the broadcast address.
    let mut payload = b"raw frame ".to_vec();
    payload.extend_from_slice(marker.as_bytes());
    let raw = ethernet_frame([0xff; 6], pair.a.mac, 0x88b5, &payload);
    // Unmarked traffic from the test is not collected.
    let unmarked = ethernet_frame([0xff; 6], pair.a.mac, 0x88b5, b"no marker here");

    let got = send_and_collect(
        &pair.a,
        &pair.b,
        &[udp.clone(), unmarked, raw.clone()],
        &marker,
        TIMEOUT,
    )
    .unwrap();
    assert_eq!(got, vec![udp, raw]);
}

#[test]
fn frames_cross_between_namespaces_both_ways() {
    if !testbed::privileged("veth traffic test") {
        return;
    }
    let left = Netns::new().unwrap();
    let right = Netns::new().unwrap();
    assert_ne!(left.name(), right.name());
    let pair = left.veth_pair_to("xa", &right, "xb").unwrap();
    assert_eq!(pair.a.netns, left.name());
    assert_eq!(pair.b.netns, right.name());
    // Each end is known by its index in its own namespace only.
    assert_eq!(
        left.run(|| if_nametoindex("xa").unwrap()).unwrap(),
        pair.a.ifindex
    );
    assert_eq!(
        right.run(|| if_nametoindex("xb").unwrap()).unwrap(),
        pair.b.ifindex
    );
    assert!(right.run(|| if_nametoindex("xa")).unwrap().is_err());

    let marker = Marker::new().unwrap();
    let there = ethernet_frame(pair.b.mac, pair.a.mac, 0x88b5, marker.as_bytes());
    let back = ethernet_frame(pair.a.mac, pair.b.mac, 0x88b5, marker.as_bytes());
    assert_eq!(
        send_and_collect(&pair.a, &pair.b, &[&there], &marker, TIMEOUT).unwrap(),
        vec![there]
    );
    assert_eq!(
        send_and_collect(&pair.b, &pair.a, &[&back], &marker, TIMEOUT).unwrap(),
        vec![back]
    );
}

#[test]
fn kernel_accepts_our_checksums() {
    // The receiving kernel verifies the IPv4 and UDP checksums of frames
    // from a packet socket; only a correct frame reaches the UDP socket.
    if !testbed::privileged("UDP delivery test") {
        return;
    }
    let left = Netns::new().unwrap();
    let right = Netns::new().unwrap();
    let pair = left.veth_pair_to("ua", &right, "ub").unwrap();
    left.ip(&["addr", "add", "10.9.0.1/24", "dev", "ua"])
        .unwrap();
    right
        .ip(&["addr", "add", "10.9.0.2/24", "dev", "ub"])
        .unwrap();
    let server = right
        .run(|| UdpSocket::bind("10.9.0.2:4242"))
        .unwrap()
        .unwrap();
    server.set_read_timeout(Some(TIMEOUT)).unwrap();

    let frame = |payload: &[u8]| {
        udp4_frame(
            pair.a.mac,
            pair.b.mac,
            Ipv4Addr::new(10, 9, 0, 1),
            Ipv4Addr::new(10, 9, 0, 2),
            3333,
            4242,
            payload,
        )
        .unwrap()
    };
    let mut bad_udp = frame(b"bad udp checksum");
    bad_udp[40] ^= 0x5a; // UDP checksum at 14 + 20 + 6
    let mut bad_ip = frame(b"bad ip checksum");
    bad_ip[24] ^= 0x5a; // IPv4 header checksum at 14 + 10
    let good = frame(b"good");

    let tx = pair.a.socket().unwrap();
    tx.send(&bad_udp).unwrap();
    tx.send(&bad_ip).unwrap();
    tx.send(&good).unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"good");
    assert_eq!(from, "10.9.0.1:3333".parse().unwrap());
}

#[test]
fn namespace_is_deleted_on_drop() {
    if !testbed::privileged("namespace cleanup test") {
        return;
    }
    let ns = Netns::new().unwrap();
    let name = ns.name().to_string();
    ns.veth_pair("da", "db").unwrap();
    assert!(netns_list().contains(&name));
    drop(ns);
    assert!(!netns_list().contains(&name));
}

#[test]
fn namespace_is_deleted_after_a_panic() {
    if !testbed::privileged("namespace cleanup test") {
        return;
    }
    let mut name = String::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let ns = Netns::new().unwrap();
        name = ns.name().to_string();
        ns.veth_pair("pa", "pb").unwrap();
        assert!(netns_list().contains(&name));
        panic!("test failure inside the namespace");
    }));
    assert!(result.is_err());
    assert!(name.starts_with("tb-"));
    assert!(!netns_list().contains(&name));
}

#[test]
fn a_panic_inside_run_reaches_the_caller() {
    if !testbed::privileged("namespace thread test") {
        return;
    }
    let ns = Netns::new().unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ns.run(|| panic!("inside")).unwrap();
    }));
    assert!(result.is_err());
    // The namespace is still usable afterwards.
    assert_eq!(ns.run(|| if_nametoindex("lo").unwrap()).unwrap(), 1);
}

#[test]
fn five_hundred_veth_pairs_come_and_go() {
    if !testbed::privileged("many veths test") {
        return;
    }
    let ns = Netns::new().unwrap();
    let name = ns.name().to_string();
    let pairs = ns.veth_pairs(500, "m").unwrap();
    assert_eq!(pairs.len(), 500);
    assert_eq!(pairs[0].a.name, "m0a");
    assert_eq!(pairs[499].b.name, "m499b");

    // Check the indexes read back from `ip` against the kernel's own answer.
    let by_kernel = ns
        .run(|| {
            pairs
                .iter()
                .map(|p| {
                    (
                        if_nametoindex(&p.a.name).unwrap(),
                        if_nametoindex(&p.b.name).unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .unwrap();
    let read_back: Vec<_> = pairs.iter().map(|p| (p.a.ifindex, p.b.ifindex)).collect();
    assert_eq!(by_kernel, read_back);

    // All 1000 ends are up (plus lo), none of them in the host namespace.
    let up = ns.ip(&["-o", "link", "show", "up"]).unwrap();
    assert_eq!(up.lines().count(), 1001);
    assert!(if_nametoindex("m0a").is_err());

    drop(pairs);
    drop(ns);
    assert!(!netns_list().contains(&name));
}

#[test]
fn recv_times_out_without_traffic() {
    if !testbed::privileged("packet socket test") {
        return;
    }
    let ns = Netns::new().unwrap();
    let pair = ns.veth_pair("qa", "qb").unwrap();
    let sock = pair.b.socket().unwrap();
    let mut buf = [0u8; 2048];
    // The veths are up but quiet: IPv6 (router solicitations, DAD) is off
    // and nothing has an IPv4 address.
    assert_eq!(
        sock.recv(&mut buf, Duration::from_millis(300)).unwrap(),
        None
    );
    assert_eq!(sock.recv(&mut buf, Duration::ZERO).unwrap(), None);
}

#[test]
fn incoming_only_hides_what_the_interface_sent() {
    if !testbed::privileged("packet socket test") {
        return;
    }
    let ns = Netns::new().unwrap();
    let pair = ns.veth_pair("oa", "ob").unwrap();
    let all = pair.a.socket().unwrap();
    let mut incoming = pair.a.socket().unwrap();
    incoming.set_incoming_only(true).unwrap();

    // Sent from a third socket: the kernel never loops a socket's own
    // frames back to it.
    let out = ethernet_frame(pair.b.mac, pair.a.mac, 0x88b5, b"outgoing");
    pair.a.socket().unwrap().send(&out).unwrap();
    let back = ethernet_frame(pair.a.mac, pair.b.mac, 0x88b5, b"incoming");
    pair.b.socket().unwrap().send(&back).unwrap();

    let mut buf = [0u8; 2048];
    // The plain socket sees its own frame going out, then the one coming in.
    let n = all.recv(&mut buf, TIMEOUT).unwrap().unwrap();
    assert_eq!(&buf[..n], &out[..]);
    let n = all.recv(&mut buf, TIMEOUT).unwrap().unwrap();
    assert_eq!(&buf[..n], &back[..]);
    // The incoming-only socket sees just the latter.
    let n = incoming.recv(&mut buf, TIMEOUT).unwrap().unwrap();
    assert_eq!(&buf[..n], &back[..]);
}

#[test]
fn ipv6_is_disabled_on_every_veth() {
    if !testbed::privileged("sysctl test") {
        return;
    }
    let left = Netns::new().unwrap();
    let right = Netns::new().unwrap();
    left.veth_pair("sa", "sb").unwrap();
    left.veth_pair_to("ta", &right, "tb").unwrap();
    for (ns, dev) in [(&left, "sa"), (&left, "sb"), (&left, "ta"), (&right, "tb")] {
        let path = format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6");
        assert_eq!(exec_cat(ns.name(), &path), "1", "{dev} in {}", ns.name());
    }
}

#[test]
fn sweep_removes_namespaces_of_dead_processes_only() {
    if !testbed::privileged("sweep test") {
        return;
    }
    // A pid that certainly existed and has exited.
    let mut child = Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let stale = format!("tb-{dead_pid}-0-deadbeef");
    let status = Command::new("ip")
        .args(["netns", "add", &stale])
        .status()
        .unwrap();
    assert!(status.success());
    let live = Netns::new().unwrap();

    let removed = testbed::sweep_stale().unwrap();
    let list = netns_list();
    // Clean up by hand before asserting, so a failure leaves nothing behind.
    if list.contains(&stale) {
        let _ = Command::new("ip").args(["netns", "del", &stale]).status();
    }
    assert!(removed.contains(&stale), "{removed:?}");
    assert!(!list.contains(&stale));
    assert!(list.contains(&live.name().to_string()));
}

#[test]
fn ip_errors_carry_stderr() {
    if !testbed::privileged("ip error test") {
        return;
    }
    let ns = Netns::new().unwrap();
    match ns.ip(&["link", "set", "nosuchdev0", "up"]) {
        Err(Error::Command {
            command, stderr, ..
        }) => {
            assert!(command.contains("nosuchdev0"), "{command}");
            assert!(stderr.contains("nosuchdev0"), "{stderr}");
        }
        other => panic!("expected a command error, got {other:?}"),
    }
    // Names the kernel or `ip -batch` would misread are refused up front.
    assert!(matches!(
        ns.veth_pair("much-too-long-name", "b"),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(ns.veth_pair("a b", "c"), Err(Error::Invalid(_))));
}

/// A test user exists while its value lives, runs commands as itself
/// without capabilities (or with the ones asked for), and is gone after
/// the drop.
#[test]
fn a_test_user_runs_commands_unprivileged_and_is_deleted_on_drop() {
    if !testbed::privileged("test user test") {
        return;
    }
    let exists = |name: &str| {
        std::fs::read_to_string("/etc/passwd")
            .unwrap()
            .lines()
            .any(|l| l.split(':').next() == Some(name))
    };
    let user = testbed::User::new().unwrap();
    let name = user.name().to_string();
    assert!(exists(&name));
    assert!(user.uid() != 0 && user.gid() != 0);
    let status = |o: std::process::Output| {
        assert!(o.status.success(), "{o:?}");
        let s = String::from_utf8(o.stdout).unwrap();
        let field = |k: &str| {
            s.lines()
                .find_map(|l| l.strip_prefix(k))
                .unwrap()
                .trim()
                .to_string()
        };
        (
            field("Uid:"),
            field("Gid:"),
            field("CapEff:"),
            field("Groups:"),
        )
    };
    let (uid, gid, caps, groups) = status(
        user.command("cat")
            .arg("/proc/self/status")
            .output()
            .unwrap(),
    );
    let u = user.uid().to_string();
    assert_eq!(uid.split_whitespace().collect::<Vec<_>>(), [&*u; 4]);
    assert_eq!(
        gid.split_whitespace().next(),
        Some(&*user.gid().to_string())
    );
    assert_eq!(caps, "0000000000000000");
    assert_eq!(groups, "");
    let (_, _, caps, _) = status(
        user.command_with_caps(&["bpf"], "cat")
            .arg("/proc/self/status")
            .output()
            .unwrap(),
    );
    assert_eq!(caps, format!("{:016x}", 1u64 << 39), "CAP_BPF only");
    drop(user);
    assert!(!exists(&name));
}
