//! Small generated programs for the attach examples: a tcx tracer that
//! records the order programs run in, an XDP redirect through a map, and
//! devmap egress programs that rewrite or drop.

use bpf_builder::asm::{Asm, Code, Label};
use bpf_builder::ctx::{TcxAction, XdpAction, sk_buff, xdp_md};
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AluOp, JmpOp, Reg::*, Size};
use bpf_builder::object::MapId;

/// EtherType of the example frames (IEEE local experimental).
pub const ETHERTYPE: u16 = 0x88b5;

/// Jumps to `skip` unless the packet (data in R2, data_end in R3) has at
/// least 16 bytes and EtherType [`ETHERTYPE`]. Clobbers R4.
fn require_frame(a: &mut Asm, skip: Label) {
    a.mov64(R4, R2);
    a.add64(R4, 16);
    a.jmp(JmpOp::Gt, R4, R3, skip);
    a.ldx(Size::H, R4, R2, 12);
    a.jmp(JmpOp::Ne, R4, i32::from(ETHERTYPE.swap_bytes()), skip);
}

/// tcx program number `digit`: for example frames, `trace[0] = trace[0] *
/// 16 + digit`, so after one frame the trace spells the order of the chain.
pub fn tracer(trace: MapId, digit: i32) -> Code {
    let mut a = Asm::new();
    let next = a.new_label();
    a.ldx(Size::W, R2, R1, sk_buff::DATA);
    a.ldx(Size::W, R3, R1, sk_buff::DATA_END);
    require_frame(&mut a, next);
    a.st(Size::W, R10, -4, 0);
    a.ld_map_fd(R1, trace);
    a.mov64(R2, R10);
    a.add64(R2, -4);
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, next);
    a.ldx(Size::DW, R1, R0, 0);
    a.alu64(AluOp::Lsh, R1, 4);
    a.alu64(AluOp::Or, R1, digit);
    a.stx(Size::DW, R0, 0, R1);
    a.bind(next);
    a.mov64(R0, TcxAction::Next);
    a.exit();
    a.finish().expect("labels are bound")
}

/// Ingress XDP: redirects example frames through `map` (devmap or cpumap)
/// with the u16 key in the first two payload bytes; passes the rest.
pub fn redirect(map: MapId) -> Code {
    let mut a = Asm::new();
    let pass = a.new_label();
    a.ldx(Size::W, R2, R1, xdp_md::DATA);
    a.ldx(Size::W, R3, R1, xdp_md::DATA_END);
    require_frame(&mut a, pass);
    a.ldx(Size::H, R2, R2, 14);
    a.ld_map_fd(R1, map);
    a.mov64(R3, 0);
    a.call(Helper::RedirectMap);
    a.exit();
    a.bind(pass);
    a.mov64(R0, XdpAction::Pass);
    a.exit();
    a.finish().expect("labels are bound")
}

/// Devmap egress: source MAC := `mac`; passes.
pub fn rewrite_src(mac: [u8; 6]) -> Code {
    let mut a = Asm::new();
    let out = a.new_label();
    a.ldx(Size::W, R2, R1, xdp_md::DATA);
    a.ldx(Size::W, R3, R1, xdp_md::DATA_END);
    a.mov64(R4, R2);
    a.add64(R4, 14);
    a.jmp(JmpOp::Gt, R4, R3, out);
    a.st(
        Size::W,
        R2,
        6,
        i32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]),
    );
    a.st(
        Size::H,
        R2,
        10,
        i32::from(u16::from_le_bytes([mac[4], mac[5]])),
    );
    a.bind(out);
    a.mov64(R0, XdpAction::Pass);
    a.exit();
    a.finish().expect("labels are bound")
}

/// Returns `action` for every frame.
pub fn verdict(action: XdpAction) -> Code {
    let mut a = Asm::new();
    a.mov64(R0, action);
    a.exit();
    a.finish().expect("no labels")
}

/// An example frame from `src` to `dst` whose payload starts with `key`.
pub fn frame(dst: [u8; 6], src: [u8; 6], key: u16, marker: &[u8]) -> Vec<u8> {
    let mut payload = key.to_ne_bytes().to_vec();
    payload.extend_from_slice(marker);
    payload.resize(46, 0);
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETHERTYPE.to_be_bytes());
    f.extend_from_slice(&payload);
    f
}
