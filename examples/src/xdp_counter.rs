//! An XDP packet counter built from scratch: a per-CPU array of
//! `{packets, bytes}` indexed by the frame's class, with bounds-checked
//! packet access. Every frame passes.

use bpf_builder::asm::{Annotation, Asm};
use bpf_builder::ctx::{XdpAction, xdp_md};
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AluOp, AtomicOp, JmpOp, Reg::*, Size};
use bpf_builder::map::MapSpec;
use bpf_builder::object::{MapId, Object, ObjectError, ProgId, ProgramType};

/// Counter slots, the array index of each class of frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Class {
    /// Shorter than an Ethernet header.
    Runt = 0,
    /// EtherType 0x0800.
    Ipv4 = 1,
    /// EtherType 0x86dd.
    Ipv6 = 2,
    /// EtherType 0x0806.
    Arp = 3,
    /// Anything else.
    Other = 4,
}

impl Class {
    /// Every class, by index.
    pub const ALL: [Class; 5] = [
        Class::Runt,
        Class::Ipv4,
        Class::Ipv6,
        Class::Arp,
        Class::Other,
    ];
}

/// The object: the `counters` map and the `xdp_counter` program.
pub struct Counter {
    /// The object to load.
    pub object: Object,
    /// The per-CPU counters.
    pub counters: MapId,
    /// The program.
    pub program: ProgId,
}

/// Builds the counter object.
pub fn build() -> Result<Counter, ObjectError> {
    let mut object = Object::new();
    let counters = object.add_map(MapSpec::per_cpu_array(
        "counters",
        16,
        Class::ALL.len() as u32,
    ))?;

    let mut a = Asm::new();
    let classify = a.named_label("classify");
    let count = a.named_label("count");
    let pass = a.named_label("pass");
    let src = |a: &mut Asm, text: &str| a.set_source(Annotation::new(text.to_string()));

    src(
        &mut a,
        "data, data_end, len = ctx->data, ctx->data_end, data_end - data",
    );
    a.ldx(Size::W, R2, R1, xdp_md::DATA);
    a.ldx(Size::W, R3, R1, xdp_md::DATA_END);
    a.mov64(R7, R3);
    a.alu64(AluOp::Sub, R7, R2);
    src(&mut a, "key = RUNT; if data + 14 > data_end: count");
    a.mov64(R6, Class::Runt as i32);
    a.mov64(R4, R2);
    a.add64(R4, 14);
    a.jmp(JmpOp::Le, R4, R3, classify);
    a.ja(count);

    a.bind(classify);
    src(&mut a, "key = class of the EtherType at offset 12");
    a.ldx(Size::H, R4, R2, 12); // network order, read as little endian
    a.mov64(R6, Class::Ipv4 as i32);
    a.jmp(JmpOp::Eq, R4, 0x0008, count);
    a.mov64(R6, Class::Ipv6 as i32);
    a.jmp(JmpOp::Eq, R4, 0xdd86, count);
    a.mov64(R6, Class::Arp as i32);
    a.jmp(JmpOp::Eq, R4, 0x0608, count);
    a.mov64(R6, Class::Other as i32);

    a.bind(count);
    src(&mut a, "value = bpf_map_lookup_elem(&counters, &key)");
    a.stx(Size::W, R10, -4, R6);
    a.ld_map_fd(R1, counters);
    a.mov64(R2, R10);
    a.add64(R2, -4);
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, pass);
    src(&mut a, "value->packets += 1; value->bytes += len");
    a.mov64(R1, 1);
    a.atomic(AtomicOp::Add, Size::DW, R0, 0, R1);
    a.atomic(AtomicOp::Add, Size::DW, R0, 8, R7);

    a.bind(pass);
    src(&mut a, "return XDP_PASS");
    a.mov64(R0, XdpAction::Pass);
    a.exit();

    let code = a.finish().expect("labels are all bound");
    let program = object.add_program("xdp_counter", ProgramType::Xdp, code)?;
    Ok(Counter {
        object,
        counters,
        program,
    })
}

/// A frame of `len` bytes with EtherType `ethertype` (if it has room for one).
pub fn frame(ethertype: u16, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    if len >= 14 {
        f[12..14].copy_from_slice(&ethertype.to_be_bytes());
    }
    f
}
