//! Map contents at scale, on the real kernel: initial entries written in
//! batches where the map type has batch updates (one by one elsewhere),
//! typed keys and values that programs read as the kernel lays them out,
//! typed batch inserts, and errors that name the entry that failed.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use bpf_builder::asm::Asm;
use bpf_builder::ctx::{XdpAction, xdp_md};
use bpf_builder::handle::{Map, MapError};
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{JmpOp, Reg::*, Size};
use bpf_builder::load::LoadError;
use bpf_builder::map::{InitValue, MapSpec, MapType};
use bpf_builder::object::{Object, ProgramType};
use bpf_builder::pod::{Ipv4Prefix, Ipv6Prefix, MacAddr, Pod};
use bpf_builder::run::TestRun;
use common::{require_bpf, ret};

/// A spec of every map type with contents, small.
fn spec_of(t: MapType) -> MapSpec {
    match t {
        MapType::ArrayOfMaps => MapSpec::array_of_maps("m", 2, MapSpec::array("i", 4, 1)),
        MapType::HashOfMaps => MapSpec::hash_of_maps("m", 4, 2, MapSpec::array("i", 4, 1)),
        MapType::CpuMap => MapSpec::cpumap("m", 1),
        MapType::LpmTrie => MapSpec::lpm_trie("m", 4, 4, 4),
        t => {
            let v = if t.is_array_like() && t != MapType::Array && t != MapType::PerCpuArray {
                4
            } else {
                8
            };
            MapSpec::new("m", t, 4, v, 4)
        }
    }
}

#[test]
fn batch_update_support_is_what_the_kernel_has() {
    if !require_bpf() {
        return;
    }
    for t in MapType::ALL {
        if t == MapType::RingBuf {
            continue;
        }
        let mut o = Object::new();
        let id = o.add_map(spec_of(t)).unwrap();
        let loaded = o.load().unwrap();
        let map = loaded.map(id);
        let value_len = if map.is_per_cpu() {
            let cpus = bpf_builder::sys::bpf::possible_cpus().unwrap() as usize;
            map.value_size().next_multiple_of(8) * cpus
        } else {
            map.value_size()
        };
        let r = map.update_batch(&vec![0u8; map.key_size()], &vec![0u8; value_len]);
        let unsupported = matches!(
            &r,
            Err(MapError::Entry { source, .. }) if source.raw_os_error() == Some(bpf_builder::sys::bpf::ENOTSUPP)
        );
        assert_eq!(
            !unsupported,
            t.has_batch_update(),
            "{t:?}: the kernel answered {r:?}"
        );
    }
}

#[test]
fn a_hundred_thousand_initial_entries_load_and_read_back() {
    if !require_bpf() {
        return;
    }
    const N: u32 = 100_000;
    let mut o = Object::new();
    let h = o.add_map(MapSpec::hash("big", 4, 8, N)).unwrap();
    let pc = o
        .add_map(MapSpec::new("pcpu", MapType::PerCpuHash, 4, 4, 1000))
        .unwrap();
    let arr = o.add_map(MapSpec::array("arr", 2, 3000)).unwrap();
    for k in 0..N {
        o.add_typed_entry(h, k, u64::from(k) * 7).unwrap();
    }
    for k in 0..1000u32 {
        o.add_typed_entry(pc, k, k + 1).unwrap();
    }
    for k in (0..3000u32).step_by(3) {
        o.add_typed_entry(arr, k, k as u16).unwrap();
    }
    let loaded = o.load().unwrap();

    let big = loaded.map(h).typed::<u32, u64>().unwrap();
    for k in [0, 1, 4_999, 50_000, N - 1] {
        assert_eq!(big.get(&k).unwrap(), Some(u64::from(k) * 7), "key {k}");
    }
    assert_eq!(big.get(&N).unwrap(), None);
    assert_eq!(
        loaded.map(h).lookup_batch_all(4096).unwrap().len(),
        N as usize
    );

    // Per-CPU values reach every CPU through the batch.
    let pcpu = loaded.map(pc).typed::<u32, u32>().unwrap();
    let all = pcpu.get_per_cpu(&999).unwrap().unwrap();
    assert_eq!(
        all.len(),
        bpf_builder::sys::bpf::possible_cpus().unwrap() as usize
    );
    assert!(all.iter().all(|&v| v == 1000), "{all:?}");

    let arr = loaded.map(arr).typed::<u32, u16>().unwrap();
    assert_eq!(arr.get(&2997).unwrap(), Some(2997));
    assert_eq!(arr.get(&2998).unwrap(), Some(0), "arrays hold zeros");
}

/// XDP: looks the first four bytes of the frame (an IPv4 address, as a
/// packet holds it) up in the IPv4 LPM trie `routes` and returns the
/// value found, or 0.
fn route_lookup(routes: bpf_builder::object::MapId) -> bpf_builder::asm::Code {
    let mut a = Asm::new();
    let miss = a.new_label();
    a.ldx(Size::W, R2, R1, xdp_md::DATA);
    a.ldx(Size::W, R3, R1, xdp_md::DATA_END);
    a.mov64(R4, R2);
    a.add64(R4, 4);
    a.jmp(JmpOp::Gt, R4, R3, miss);
    // struct { u32 prefixlen; u8 addr[4]; } key = { 32, packet[0..4] };
    a.st(Size::W, R10, -8, 32);
    a.ldx(Size::W, R4, R2, 0);
    a.stx(Size::W, R10, -4, R4);
    a.ld_map_fd(R1, routes);
    a.mov64(R2, R10);
    a.add64(R2, -8);
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, miss);
    a.ldx(Size::W, R0, R0, 0);
    a.exit();
    a.bind(miss);
    a.mov64(R0, XdpAction::Aborted);
    a.exit();
    a.finish().unwrap()
}

#[test]
fn lpm_tries_filled_with_typed_prefixes_answer_programs_and_user_space() {
    if !require_bpf() {
        return;
    }
    let mut o = Object::new();
    let routes = o.add_map(MapSpec::lpm_trie("routes", 4, 4, 16)).unwrap();
    let routes6 = o.add_map(MapSpec::lpm_trie("routes6", 16, 4, 16)).unwrap();
    for (net, len, value) in [
        ([10, 0, 0, 0], 8, 1u32),
        ([10, 1, 0, 0], 16, 2),
        ([10, 1, 2, 0], 24, 3),
    ] {
        o.add_typed_entry(routes, Ipv4Prefix::new(Ipv4Addr::from(net), len), value)
            .unwrap();
    }
    let doc: Ipv6Addr = "2001:db8::".parse().unwrap();
    o.add_typed_entry(routes6, Ipv6Prefix::new(doc, 32), 6u32)
        .unwrap();
    o.add_typed_entry(
        routes6,
        Ipv6Prefix::new("2001:db8:1::".parse().unwrap(), 48),
        7u32,
    )
    .unwrap();
    let prog = o
        .add_program("route", ProgramType::Xdp, route_lookup(routes))
        .unwrap();
    let loaded = o.load().unwrap();

    for (addr, want) in [
        ([10, 1, 2, 3], 3),
        ([10, 1, 9, 9], 2),
        ([10, 9, 9, 9], 1),
        ([11, 0, 0, 1], 0),
    ] {
        let mut frame = addr.to_vec();
        frame.resize(64, 0);
        let out = loaded
            .program(prog)
            .test_run(&TestRun::new(&frame))
            .unwrap();
        assert_eq!(out.retval, want, "program lookup of {addr:?}");
        let typed = loaded.map(routes).typed::<Ipv4Prefix, u32>().unwrap();
        let got = typed.get(&Ipv4Prefix::host(Ipv4Addr::from(addr))).unwrap();
        assert_eq!(got.unwrap_or(0), want, "user-space lookup of {addr:?}");
    }

    let v6 = loaded.map(routes6).typed::<Ipv6Prefix, u32>().unwrap();
    let host = |s: &str| Ipv6Prefix::host(s.parse().unwrap());
    assert_eq!(v6.get(&host("2001:db8:1::5")).unwrap(), Some(7));
    assert_eq!(v6.get(&host("2001:db8:2::5")).unwrap(), Some(6));
    assert_eq!(v6.get(&host("2001:db9::1")).unwrap(), None);
    let mut stored: Vec<String> = v6.keys().map(|k| k.unwrap().to_string()).collect();
    stored.sort();
    assert_eq!(stored, ["2001:db8:1::/48", "2001:db8::/32"]);
}

#[test]
fn typed_batch_inserts_write_many_entries() {
    if !require_bpf() {
        return;
    }
    const N: u32 = 200_000;
    let mut o = Object::new();
    let macs = o
        .add_map(MapSpec::hash("macs", MacAddr::SIZE as u32, 4, N))
        .unwrap();
    let lpm = o.add_map(MapSpec::lpm_trie("nets", 4, 8, 1024)).unwrap();
    let devs = o
        .add_map(MapSpec::new("devs", MapType::DevMapHash, 4, 4, 64))
        .unwrap();
    let loaded = o.load().unwrap();

    let mac = |i: u32| {
        let b = i.to_be_bytes();
        MacAddr([2, 0, b[0], b[1], b[2], b[3]])
    };
    let typed = loaded.map(macs).typed::<MacAddr, u32>().unwrap();
    assert_eq!(
        typed.insert_batch((0..N).map(|i| (mac(i), i))).unwrap(),
        N as usize
    );
    assert_eq!(typed.get(&mac(123_456)).unwrap(), Some(123_456));
    assert_eq!(typed.get(&MacAddr([2, 0, 0, 0x10, 0, 0])).unwrap(), None);
    assert_eq!(typed.iter().take(10).filter(|e| e.is_ok()).count(), 10);
    // Replacing works the same way.
    typed
        .insert_batch((0..10).map(|i| (mac(i), i + 1_000_000)))
        .unwrap();
    assert_eq!(typed.get(&mac(9)).unwrap(), Some(1_000_009));
    assert_eq!(typed.get(&mac(10)).unwrap(), Some(10));

    let nets = loaded.map(lpm).typed::<Ipv4Prefix, u64>().unwrap();
    let prefixes = (0..1000u32).map(|i| {
        let net = Ipv4Addr::from(0x0a00_0000 | (i << 8));
        (Ipv4Prefix::new(net, 24), u64::from(i))
    });
    assert_eq!(nets.insert_batch(prefixes).unwrap(), 1000);
    let hit = nets
        .get(&Ipv4Prefix::host(Ipv4Addr::new(10, 0, 3, 200)))
        .unwrap();
    assert_eq!(hit, Some(3));

    // Devmaps have no batch update: the same call writes one by one.
    let ports = loaded.map(devs).typed::<u32, u32>().unwrap();
    assert_eq!(ports.insert_batch((0..64).map(|i| (i * 3, 1))).unwrap(), 64);
    assert_eq!(ports.get(&189).unwrap(), Some(1));
    assert_eq!(ports.keys().count(), 64);
}

#[test]
fn typed_views_check_sizes_once() {
    if !require_bpf() {
        return;
    }
    let mut o = Object::new();
    let h = o.add_map(MapSpec::hash("h", 4, 8, 4)).unwrap();
    let loaded = o.load().unwrap();
    let e = loaded.map(h).typed::<u64, u64>().unwrap_err();
    assert!(
        e.to_string().contains("typed key is 8 bytes, expected 4"),
        "{e}"
    );
    let e = loaded.map(h).typed::<u32, [u8; 6]>().unwrap_err();
    assert!(
        e.to_string().contains("typed value is 6 bytes, expected 8"),
        "{e}"
    );
    assert!(loaded.map(h).typed::<Ipv4Addr, [u32; 2]>().is_ok());
}

/// The error of a batch insert names the entry; those before it are in.
fn assert_stopped_at(map: &Map, e: MapError, index: usize, key: &[u8], errno: i32) {
    match e {
        MapError::Entry {
            index: i,
            key: k,
            source,
            ..
        } => {
            assert_eq!(i, index, "{}", map.name());
            assert_eq!(k, key, "{}", map.name());
            assert_eq!(source.raw_os_error(), Some(errno), "{}", map.name());
        }
        other => panic!("{}: {other}", map.name()),
    }
}

#[test]
fn a_refused_entry_is_named_and_those_before_it_are_written() {
    if !require_bpf() {
        return;
    }
    let mut o = Object::new();
    let small = o.add_map(MapSpec::hash("small", 4, 4, 10)).unwrap();
    let arr = o.add_map(MapSpec::array("arr", 4, 8)).unwrap();
    let lpm = o.add_map(MapSpec::lpm_trie("lpm", 4, 4, 8)).unwrap();
    let devs = o
        .add_map(MapSpec::new("devs", MapType::DevMapHash, 4, 4, 8))
        .unwrap();
    let loaded = o.load().unwrap();

    // Batched: the hash holds 10.
    let m = loaded.map(small);
    let e = m
        .typed::<u32, u32>()
        .unwrap()
        .insert_batch((100..120u32).map(|k| (k, k)))
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("map `small`: insert batch failed at entry 10 (key 6e 00 00 00)"),
        "{e}"
    );
    assert_stopped_at(m, e, 10, &110u32.to_ne_bytes(), libc::E2BIG);
    assert_eq!(m.iter().count(), 10);

    // Batched: an array index past the end.
    let m = loaded.map(arr);
    let e = m
        .typed::<u32, u32>()
        .unwrap()
        .insert_batch([(1, 1), (7, 7), (8, 8), (2, 2)])
        .unwrap_err();
    assert_stopped_at(m, e, 2, &8u32.to_ne_bytes(), libc::E2BIG);
    let arr = m.typed::<u32, u32>().unwrap();
    assert_eq!(arr.get(&7).unwrap(), Some(7));
    assert_eq!(arr.get(&2).unwrap(), Some(0), "nothing after the failure");

    // One by one: a devmap entry without a device.
    let m = loaded.map(devs);
    let e = m
        .typed::<u32, u32>()
        .unwrap()
        .insert_batch([(0, 1), (1, 1), (2, 0), (3, 1)])
        .unwrap_err();
    assert_stopped_at(m, e, 2, &2u32.to_ne_bytes(), libc::EINVAL);
    assert_eq!(m.keys().count(), 2);

    // A prefix longer than the address.
    let m = loaded.map(lpm);
    let net = Ipv4Addr::new(10, 0, 0, 0);
    let e = m
        .typed::<Ipv4Prefix, u32>()
        .unwrap()
        .insert_batch([(Ipv4Prefix::new(net, 8), 1), (Ipv4Prefix::new(net, 33), 2)])
        .unwrap_err();
    assert_stopped_at(m, e, 1, &Ipv4Prefix::new(net, 33).to_bytes(), libc::EINVAL);
    assert_eq!(m.iter().count(), 1);
}

#[test]
fn entries_of_bytes_are_written_as_typed_ones_are() {
    if !require_bpf() {
        return;
    }
    let mut o = Object::new();
    let small = o.add_map(MapSpec::hash("small", 4, 4, 10)).unwrap();
    let devs = o
        .add_map(MapSpec::new("devs", MapType::DevMapHash, 4, 4, 8))
        .unwrap();
    let loaded = o.load().unwrap();
    let entries = |ks: &[(u32, u32)]| -> Vec<(Vec<u8>, Vec<u8>)> {
        ks.iter()
            .map(|(k, v)| (k.to_ne_bytes().to_vec(), v.to_ne_bytes().to_vec()))
            .collect()
    };

    // Batched: all of them, then the hash full at the eleventh.
    let m = loaded.map(small);
    let first: Vec<(u32, u32)> = (100..108u32).map(|k| (k, k + 1)).collect();
    let written = m
        .update_all(entries(&first).iter().map(|(k, v)| (&k[..], &v[..])))
        .unwrap();
    assert_eq!(written, 8);
    let typed = m.typed::<u32, u32>().unwrap();
    assert_eq!(typed.get(&103).unwrap(), Some(104));
    let more: Vec<(u32, u32)> = (200..210u32).map(|k| (k, k)).collect();
    let e = m
        .update_all(entries(&more).iter().map(|(k, v)| (&k[..], &v[..])))
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("map `small`: update all failed at entry 2 (key ca 00 00 00)"),
        "{e}"
    );
    assert_stopped_at(m, e, 2, &202u32.to_ne_bytes(), libc::E2BIG);
    assert_eq!(m.iter().count(), 10);

    // One by one: a devmap entry without a device.
    let m = loaded.map(devs);
    let devices = entries(&[(0, 1), (1, 1), (2, 0), (3, 1)]);
    let e = m
        .update_all(devices.iter().map(|(k, v)| (&k[..], &v[..])))
        .unwrap_err();
    assert_stopped_at(m, e, 2, &2u32.to_ne_bytes(), libc::EINVAL);
    assert_eq!(m.keys().count(), 2);
}

#[test]
fn a_refused_initial_entry_names_its_map_and_key() {
    if !require_bpf() {
        return;
    }
    // Batched: more entries than the hash holds.
    let mut o = Object::new();
    let h = o.add_map(MapSpec::hash("tiny", 4, 4, 3)).unwrap();
    for k in 0..4u32 {
        o.add_typed_entry(h, k, k).unwrap();
    }
    let e = o.load().unwrap_err();
    // A full map is a fault we can name: said in our words.
    assert!(
        matches!(e, LoadError::Entry(MapError::Full { max_entries: 3, .. })),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "writing the initial contents failed: map `tiny` is full: it holds at most 3 entries \
         (delete one, or write a key it already has)"
    );

    // The kernel refuses a prefix longer than the address.
    let mut o = Object::new();
    let t = o.add_map(MapSpec::lpm_trie("trie", 4, 4, 4)).unwrap();
    o.add_typed_entry(t, Ipv4Prefix::new(Ipv4Addr::new(10, 0, 0, 0), 8), 1u32)
        .unwrap();
    o.add_typed_entry(t, Ipv4Prefix::new(Ipv4Addr::new(10, 0, 0, 0), 40), 2u32)
        .unwrap();
    let e = o.load().unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "filling map `trie` failed at key 28 00 00 00 0a 00 00 00: {}",
            std::io::Error::from_raw_os_error(libc::EINVAL)
        )
    );
}

#[test]
fn entries_may_be_added_before_the_program_that_uses_their_map() {
    if !require_bpf() {
        return;
    }
    // The program array and its entries first, each target right before
    // its entry, then the entry program that tail-calls through the array
    // (which must come after the map it refers to).
    let mut o = Object::new();
    let jumps = o.add_map(MapSpec::prog_array("jumps", 64)).unwrap();
    for i in 0..64u32 {
        let target = o
            .add_program(&format!("t{i}"), ProgramType::Xdp, ret(100 + i as i32))
            .unwrap();
        o.add_map_entry(jumps, i.to_ne_bytes(), InitValue::Prog(target))
            .unwrap();
    }
    let mut a = Asm::new();
    let out = a.new_label();
    a.ldx(Size::W, R2, R1, xdp_md::DATA);
    a.ldx(Size::W, R3, R1, xdp_md::DATA_END);
    a.mov64(R4, R2);
    a.add64(R4, 1);
    a.jmp(JmpOp::Gt, R4, R3, out);
    a.ldx(Size::B, R3, R2, 0);
    a.ld_map_fd(R2, jumps);
    a.call(Helper::TailCall);
    a.bind(out);
    a.mov64(R0, XdpAction::Pass);
    a.exit();
    let entry = o
        .add_program("entry", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    let loaded = o.load().unwrap();
    for i in [0u8, 17, 63] {
        let mut frame = vec![i];
        frame.resize(64, 0);
        let r = loaded
            .program(entry)
            .test_run(&TestRun::new(&frame))
            .unwrap();
        assert_eq!(r.retval, 100 + u32::from(i));
    }
}
