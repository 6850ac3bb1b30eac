//! The object the ELF tests write: every map type libbpf 1.1 can express,
//! global data, functions (one called, one a `bpf_loop` callback) and
//! programs of several types, two sharing a section, two with XDP
//! fragment support.

#![allow(dead_code)]

use bpf_builder::asm::{Annotation, Asm};
use bpf_builder::btf::{Btf, Member, Type};
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AluOp, AtomicOp, JmpOp, Reg::*, Size};
use bpf_builder::map::{MapSpec, MapType};
use bpf_builder::object::{MapId, Object, ProgId, ProgramType};

/// The object and the ids the tests check.
pub struct Sample {
    /// The object.
    pub object: Object,
    /// The XDP program with the loop, the call and the globals.
    pub main: ProgId,
    /// `.data` (u64 total at 0, u64 runs at 8).
    pub data: MapId,
    /// The hash the main program counts runs in (key 0).
    pub hits: MapId,
}

/// `iterations` and `step` go to `.rodata`; `total` in `.data` ends as
/// `3 * sum(step + i for i < iterations) + 1`.
pub fn expected_total(iterations: u32, step: u32) -> u64 {
    3 * (0..iterations as u64).map(|i| step as u64 + i).sum::<u64>() + 1
}

/// Typed key/value for one map, so `.maps` carries `key`/`value` types.
fn typed() -> (Btf, u32, u32) {
    let mut b = Btf::new();
    let u32_ = b.add(Type::int("__u32", 4, false));
    let u64_ = b.add(Type::int("__u64", 8, false));
    let v = b.add(Type::Struct {
        name: "hit".into(),
        size: 8,
        members: vec![Member::new("count", u64_, 0)],
    });
    (b, u32_, v)
}

/// Every map type we support except none: all are expressible in `.maps`.
pub fn every_map() -> Vec<MapSpec> {
    let (b, k, v) = typed();
    vec![
        MapSpec::array("arr", 8, 4),
        MapSpec::per_cpu_array("pcpu_arr", 8, 4),
        MapSpec::hash("hits", 4, 8, 16).with_btf(b, k, v),
        MapSpec::new("pcpu_hash", MapType::PerCpuHash, 4, 8, 16),
        MapSpec::new("lru", MapType::LruHash, 8, 8, 16),
        MapSpec::new("lru_pcpu", MapType::LruPerCpuHash, 4, 4, 16),
        MapSpec::lpm_trie("lpm", 4, 4, 16),
        MapSpec::ring_buf("events", 4096),
        MapSpec::prog_array("jumps", 4),
        MapSpec::devmap("devs", 4),
        MapSpec::devmap_hash("devs_hash", 4),
        MapSpec::cpumap("cpus", 2),
        MapSpec::array_of_maps("outer_arr", 2, MapSpec::array("inner_a", 4, 1)),
        MapSpec::hash_of_maps("outer_hash", 4, 2, MapSpec::hash("inner_h", 4, 4, 8)),
    ]
}

fn ret(action: i32, text: &str) -> bpf_builder::asm::Code {
    let mut a = Asm::new();
    a.set_source(Annotation::new(text.to_string()));
    a.mov64(R0, action);
    a.exit();
    a.finish().unwrap()
}

/// Builds the sample object.
pub fn build(iterations: u32, step: u32) -> Sample {
    let mut o = Object::new();
    let mut ids = Vec::new();
    for m in every_map() {
        ids.push(o.add_map(m).unwrap());
    }
    let hits = o.map_by_name("hits").unwrap();
    let ro = [iterations.to_ne_bytes(), step.to_ne_bytes()].concat();
    let rodata = o.add_rodata(".rodata", &ro).unwrap();
    let data = o.add_data(".data", &[0u8; 16]).unwrap();
    let bss = o.add_data(".bss", &[0u8; 8]).unwrap();

    let mut a = Asm::new();
    a.set_source(Annotation::at("sample.rs", 10, 5, "mix(x) = 3x + 1"));
    a.mov64(R0, R1);
    a.alu64(AluOp::Mul, R0, 3);
    a.add64(R0, 1);
    a.exit();
    let mix = o.add_function("mix", a.finish().unwrap()).unwrap();

    let mut a = Asm::new();
    a.set_source(Annotation::at("sample.rs", 20, 5, "*acc += step + i"));
    a.ld_map_value(R3, rodata, 4);
    a.ldx(Size::W, R3, R3, 0);
    a.alu64(AluOp::Add, R3, R1);
    a.ldx(Size::DW, R4, R2, 0);
    a.alu64(AluOp::Add, R4, R3);
    a.stx(Size::DW, R2, 0, R4);
    a.mov64(R0, 0);
    a.exit();
    let add_step = o.add_function("add_step", a.finish().unwrap()).unwrap();

    let mut a = Asm::new();
    let done = a.named_label("done");
    let no_hit = a.new_label();
    a.set_source(Annotation::at("sample.rs", 30, 1, "loop over iterations"));
    a.st(Size::DW, R10, -8, 0);
    a.ld_map_value(R1, rodata, 0);
    a.ldx(Size::W, R1, R1, 0);
    a.ld_func(R2, add_step);
    a.mov64(R3, R10);
    a.add64(R3, -8);
    a.mov64(R4, 0);
    a.call(Helper::Loop);
    a.jmp(JmpOp::SLt, R0, 0, done);
    a.set_source(Annotation::at("sample.rs", 31, 1, "total = mix(acc)"));
    a.ldx(Size::DW, R1, R10, -8);
    a.call_func(mix);
    a.ld_map_value(R1, data, 0);
    a.stx(Size::DW, R1, 0, R0);
    a.bind(done);
    a.set_source(Annotation::at(
        "sample.rs",
        32,
        1,
        "runs += 1; hits[0] += 1",
    ));
    a.ld_map_value(R1, data, 8);
    a.mov64(R2, 1);
    a.atomic(AtomicOp::Add, Size::DW, R1, 0, R2);
    a.ld_map_value(R1, bss, 0);
    a.atomic(AtomicOp::Add, Size::DW, R1, 0, R2);
    a.st(Size::W, R10, -12, 0);
    a.ld_map_fd(R1, hits);
    a.mov64(R2, R10);
    a.add64(R2, -12);
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, no_hit);
    a.mov64(R1, 1);
    a.atomic(AtomicOp::Add, Size::DW, R0, 0, R1);
    a.bind(no_hit);
    a.clear_source();
    a.mov64(R0, 2);
    a.exit();
    let main = o
        .add_program("main", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    o.add_program("drop_all", ProgramType::Xdp, ret(1, "drop everything"))
        .unwrap();
    o.add_program("tc_ok", ProgramType::SchedCls, ret(0, "TC_ACT_OK"))
        .unwrap();
    o.add_program("sock_all", ProgramType::SocketFilter, ret(-1, "keep all"))
        .unwrap();
    o.add_program("on_devmap", ProgramType::XdpDevmap, ret(2, "pass"))
        .unwrap();
    // Fragment support: sections `xdp.frags` and `xdp.frags/devmap`.
    let jumbo = o
        .add_program("jumbo", ProgramType::Xdp, ret(2, "pass any size"))
        .unwrap();
    o.set_xdp_frags(jumbo, true).unwrap();
    let dev_jumbo = o
        .add_program("dev_jumbo", ProgramType::XdpDevmap, ret(2, "pass"))
        .unwrap();
    o.set_xdp_frags(dev_jumbo, true).unwrap();
    Sample {
        object: o,
        main,
        data,
        hits,
    }
}
