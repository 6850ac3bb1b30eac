//! The context structs of program types, as BTF: what the prototype
//! `int f(struct <ctx> *ctx)` of a global function or an extension
//! program points to. The kernel recognises the context by the struct's
//! name; the size and members are the uapi's, so tools that print the
//! BTF show the real thing.

use super::{Btf, Member, Type, TypeId};
use crate::ctx::{sk_buff, xdp_md};
use crate::object::ProgramType;

/// The uapi name of the context struct of `prog_type`: `xdp_md`,
/// `__sk_buff`, `pt_regs` (kprobes, uprobes), `bpf_raw_tracepoint_args`,
/// `bpf_perf_event_data`. Classic tracepoints, tp_btf, fentry and fexit
/// have no context struct the kernel recognises by name (their global
/// functions cannot take the context as such): `""`.
pub fn context_name(prog_type: ProgramType) -> &'static str {
    use ProgramType as T;
    match prog_type {
        t if t.is_xdp() => "xdp_md",
        T::Kprobe
        | T::Kretprobe
        | T::Uprobe
        | T::Uretprobe
        | T::KprobeMulti
        | T::KretprobeMulti
        | T::UprobeMulti
        | T::UretprobeMulti => "pt_regs",
        T::RawTracepoint => "bpf_raw_tracepoint_args",
        T::PerfEvent => "bpf_perf_event_data",
        T::Tracepoint | T::TpBtf | T::Fentry | T::Fexit => "",
        _ => "__sk_buff",
    }
}

/// `struct pt_regs` of x86_64 as BTF: 21 `unsigned long` members.
fn pt_regs_members(btf: &mut Btf) -> Vec<Member> {
    use crate::ctx::pt_regs as r;
    let ulong = btf.add(Type::int("long unsigned int", 8, false));
    [
        ("r15", r::R15),
        ("r14", r::R14),
        ("r13", r::R13),
        ("r12", r::R12),
        ("bp", r::RBP),
        ("bx", r::RBX),
        ("r11", r::R11),
        ("r10", r::R10),
        ("r9", r::R9),
        ("r8", r::R8),
        ("ax", r::RAX),
        ("cx", r::RCX),
        ("dx", r::RDX),
        ("si", r::RSI),
        ("di", r::RDI),
        ("orig_ax", r::ORIG_RAX),
        ("ip", r::RIP),
        ("cs", r::CS),
        ("flags", r::EFLAGS),
        ("sp", r::RSP),
        ("ss", r::SS),
    ]
    .iter()
    .map(|&(n, off)| Member::new(n, ulong, off as u32 * 8))
    .collect()
}

/// The context struct of a tracing type (see [`context_name`]).
fn tracing_context(btf: &mut Btf, prog_type: ProgramType) -> (u32, Vec<Member>) {
    use crate::ctx::{perf_event_data, pt_regs};
    match context_name(prog_type) {
        "pt_regs" => (pt_regs::SIZE as u32, pt_regs_members(btf)),
        "bpf_perf_event_data" => {
            let regs = pt_regs_members(btf);
            let regs = btf.add(Type::Struct {
                name: "pt_regs".into(),
                size: pt_regs::SIZE as u32,
                members: regs,
            });
            let u64_ = btf.add(Type::int("__u64", 8, false));
            let members = vec![
                Member::new("regs", regs, 0),
                Member::new(
                    "sample_period",
                    u64_,
                    perf_event_data::SAMPLE_PERIOD as u32 * 8,
                ),
                Member::new("addr", u64_, perf_event_data::ADDR as u32 * 8),
            ];
            (perf_event_data::SIZE as u32, members)
        }
        "bpf_raw_tracepoint_args" => {
            // `__u64 args[0]`: a flexible array.
            let u64_ = btf.add(Type::int("__u64", 8, false));
            let index = btf.add(Type::int("__ARRAY_SIZE_TYPE__", 4, false));
            let args = btf.add(Type::Array {
                elem: u64_,
                index,
                len: 0,
            });
            (0, vec![Member::new("args", args, 0)])
        }
        _ => (0, Vec::new()),
    }
}

/// Adds `struct <ctx>` of `prog_type` (with the integer types its members
/// need) to `btf` and returns its id.
pub fn add_context_struct(btf: &mut Btf, prog_type: ProgramType) -> TypeId {
    if prog_type.is_tracing() {
        let (size, members) = tracing_context(btf, prog_type);
        return btf.add(Type::Struct {
            name: context_name(prog_type).into(),
            size,
            members,
        });
    }
    let u32_ = btf.add(Type::int("__u32", 4, false));
    let bits = |off: i16| off as u32 * 8;
    let (size, members) = if prog_type.is_xdp() {
        let fields = [
            ("data", xdp_md::DATA),
            ("data_end", xdp_md::DATA_END),
            ("data_meta", xdp_md::DATA_META),
            ("ingress_ifindex", xdp_md::INGRESS_IFINDEX),
            ("rx_queue_index", xdp_md::RX_QUEUE_INDEX),
            ("egress_ifindex", xdp_md::EGRESS_IFINDEX),
        ];
        let members = fields
            .iter()
            .map(|&(n, off)| Member::new(n, u32_, bits(off)))
            .collect();
        (xdp_md::SIZE as u32, members)
    } else {
        let u8_ = btf.add(Type::int("__u8", 1, false));
        let u64_ = btf.add(Type::int("__u64", 8, false));
        let index = btf.add(Type::int("__ARRAY_SIZE_TYPE__", 4, false));
        let array = |btf: &mut Btf, len| {
            btf.add(Type::Array {
                elem: u32_,
                index,
                len,
            })
        };
        let cb = array(btf, 5);
        let ip6 = array(btf, 4);
        use sk_buff as s;
        // `flow_keys` and `sk` are `__bpf_md_ptr` unions of a pointer and
        // a `__u64`: given here as the `__u64`.
        let fields = [
            ("len", s::LEN, u32_),
            ("pkt_type", s::PKT_TYPE, u32_),
            ("mark", s::MARK, u32_),
            ("queue_mapping", s::QUEUE_MAPPING, u32_),
            ("protocol", s::PROTOCOL, u32_),
            ("vlan_present", s::VLAN_PRESENT, u32_),
            ("vlan_tci", s::VLAN_TCI, u32_),
            ("vlan_proto", s::VLAN_PROTO, u32_),
            ("priority", s::PRIORITY, u32_),
            ("ingress_ifindex", s::INGRESS_IFINDEX, u32_),
            ("ifindex", s::IFINDEX, u32_),
            ("tc_index", s::TC_INDEX, u32_),
            ("cb", s::CB, cb),
            ("hash", s::HASH, u32_),
            ("tc_classid", s::TC_CLASSID, u32_),
            ("data", s::DATA, u32_),
            ("data_end", s::DATA_END, u32_),
            ("napi_id", s::NAPI_ID, u32_),
            ("family", s::FAMILY, u32_),
            ("remote_ip4", s::REMOTE_IP4, u32_),
            ("local_ip4", s::LOCAL_IP4, u32_),
            ("remote_ip6", s::REMOTE_IP6, ip6),
            ("local_ip6", s::LOCAL_IP6, ip6),
            ("remote_port", s::REMOTE_PORT, u32_),
            ("local_port", s::LOCAL_PORT, u32_),
            ("data_meta", s::DATA_META, u32_),
            ("flow_keys", s::FLOW_KEYS, u64_),
            ("tstamp", s::TSTAMP, u64_),
            ("wire_len", s::WIRE_LEN, u32_),
            ("gso_segs", s::GSO_SEGS, u32_),
            ("sk", s::SK, u64_),
            ("gso_size", s::GSO_SIZE, u32_),
            ("tstamp_type", s::TSTAMP_TYPE, u8_),
            ("hwtstamp", s::HWTSTAMP, u64_),
        ];
        let members = fields
            .iter()
            .map(|&(n, off, ty)| Member::new(n, ty, bits(off)))
            .collect();
        (sk_buff::SIZE as u32, members)
    };
    btf.add(Type::Struct {
        name: context_name(prog_type).into(),
        size,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_structs_have_the_uapi_sizes() {
        for (t, name, size) in [
            (ProgramType::Xdp, "xdp_md", 24),
            (ProgramType::XdpDevmap, "xdp_md", 24),
            (ProgramType::SchedCls, "__sk_buff", 192),
            (ProgramType::TcxIngress, "__sk_buff", 192),
            (ProgramType::SocketFilter, "__sk_buff", 192),
            (ProgramType::Kprobe, "pt_regs", 168),
            (ProgramType::Uretprobe, "pt_regs", 168),
            (ProgramType::PerfEvent, "bpf_perf_event_data", 184),
            (ProgramType::RawTracepoint, "bpf_raw_tracepoint_args", 0),
        ] {
            let mut b = Btf::new();
            let id = add_context_struct(&mut b, t);
            assert_eq!(b.size_of(id), Some(size), "{t:?}");
            match b.get(id) {
                Some(Type::Struct {
                    name: n, members, ..
                }) => {
                    assert_eq!(n, name);
                    // Every member lies inside the struct.
                    for m in members {
                        let end = m.bit_offset / 8 + b.size_of(m.ty).unwrap();
                        assert!(end <= size, "{t:?} {}", m.name);
                    }
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
