//! The example programs pass the verifier and do what they say, on the
//! real kernel.

use bpf_builder::ctx::{TcxAction, XdpAction};
use bpf_builder::run::TestRun;
use examples::xdp_counter::{self, Class};
use examples::{loop_globals, require_bpf};

#[test]
fn xdp_counter_counts_frames_by_class() {
    if !require_bpf("xdp_counter_counts_frames_by_class") {
        return;
    }
    let counter = xdp_counter::build().unwrap();
    let loaded = counter.object.load().unwrap();
    let prog = loaded.program(counter.program);
    let frames = [
        (0x0800, 60),
        (0x0800, 1500),
        (0x86dd, 90),
        (0x0806, 42),
        (0x88cc, 64),
        (0x0800, 14),
    ];
    for (ethertype, len) in frames {
        let f = xdp_counter::frame(ethertype, len);
        let out = prog.test_run(&TestRun::new(&f)).unwrap();
        assert_eq!(out.retval, XdpAction::Pass.value() as u32);
        assert_eq!(out.data, f, "the counter does not touch the frame");
    }
    let counters = loaded.map(counter.counters);
    let read = |class: Class| {
        let key = (class as u32).to_ne_bytes();
        (
            counters.sum_u64(&key, 0).unwrap(),
            counters.sum_u64(&key, 8).unwrap(),
        )
    };
    assert_eq!(read(Class::Ipv4), (3, 60 + 1500 + 14));
    assert_eq!(read(Class::Ipv6), (1, 90));
    assert_eq!(read(Class::Arp), (1, 42));
    assert_eq!(read(Class::Other), (1, 64));
    assert_eq!(read(Class::Runt), (0, 0));
}

#[test]
fn loop_globals_sums_through_callback_and_subprogram() {
    if !require_bpf("loop_globals_sums_through_callback_and_subprogram") {
        return;
    }
    let built = loop_globals::build(10, 7).unwrap();
    let loaded = built.object.load().unwrap();
    let prog = loaded.program(built.program);
    for _ in 0..3 {
        let out = prog.test_run(&TestRun::new(&[0u8; 64])).unwrap();
        assert_eq!(out.retval, 2);
    }
    let value = loaded
        .map(built.data)
        .lookup(&0u32.to_ne_bytes())
        .unwrap()
        .unwrap();
    let total = u64::from_ne_bytes(value[0..8].try_into().unwrap());
    let runs = u64::from_ne_bytes(value[8..16].try_into().unwrap());
    // sum of 7 + i for i in 0..10 is 115; 3 * 115 + 1.
    assert_eq!(total, 346);
    assert_eq!(total, loop_globals::expected_total(10, 7));
    assert_eq!(runs, 3);
    // .rodata is frozen: user space can no longer write it.
    let ro = loaded.map(built.rodata);
    assert!(
        ro.update(&0u32.to_ne_bytes(), &[0u8; 8], Default::default())
            .is_err()
    );
}

#[test]
fn net_progs_do_what_the_attach_examples_say() {
    use bpf_builder::map::MapSpec;
    use bpf_builder::object::{Object, ProgramType};
    use examples::net_progs;
    if !require_bpf("net_progs_do_what_the_attach_examples_say") {
        return;
    }
    let mut obj = Object::new();
    let trace = obj.add_map(MapSpec::array("trace", 8, 1)).unwrap();
    let tracer = obj
        .add_program(
            "ex_tracer",
            ProgramType::TcxIngress,
            net_progs::tracer(trace, 7),
        )
        .unwrap();
    let mac = [0x02, 0, 0, 0, 0, 0xaa];
    let rewrite = obj
        .add_program("ex_rewrite", ProgramType::Xdp, net_progs::rewrite_src(mac))
        .unwrap();
    let loaded = obj.load().unwrap();
    let f = net_progs::frame([0xff; 6], [0x0a, 1, 2, 3, 4, 5], 0, &[9; 16]);

    let out = loaded.program(rewrite).test_run(&TestRun::new(&f)).unwrap();
    assert_eq!(out.retval, 2);
    assert_eq!(out.data[6..12], mac);
    assert_eq!(out.data[..6], f[..6]);
    assert_eq!(out.data[12..], f[12..]);

    for expected in [7u64, 0x77] {
        let out = loaded.program(tracer).test_run(&TestRun::new(&f)).unwrap();
        assert_eq!(out.retval as i32, TcxAction::Next.value());
        let v = loaded
            .map(trace)
            .lookup(&0u32.to_ne_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(u64::from_ne_bytes(v[..8].try_into().unwrap()), expected);
    }
    // Other EtherTypes leave the trace alone.
    let mut other = f.clone();
    other[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    loaded
        .program(tracer)
        .test_run(&TestRun::new(&other))
        .unwrap();
    let v = loaded
        .map(trace)
        .lookup(&0u32.to_ne_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(u64::from_ne_bytes(v[..8].try_into().unwrap()), 0x77);
}
