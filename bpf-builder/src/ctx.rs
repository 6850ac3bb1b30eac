//! What programs exchange with the kernel: the actions network programs
//! return ([`XdpAction`], [`TcAction`], [`TcxAction`]), the layouts of
//! their contexts ([`xdp_md`], [`sk_buff`]: field offsets for
//! [`Asm::ldx`](crate::asm::Asm::ldx), and [`XdpMd`] for test runs), the
//! contexts of tracing programs ([`pt_regs`] for kprobes and uprobes,
//! [`raw_tracepoint_args`], [`tracing_args`] for tp_btf, fentry and
//! fexit, [`perf_event_data`]), and what the helpers they call return.
//!
//! Values and offsets are the kernel's uapi (`include/uapi/linux/bpf.h`,
//! `pkt_cls.h`); `tests/ctx_layout.rs` checks every offset against the
//! system's headers with a C compiler.
//!
//! ```
//! use bpf_builder::asm::Asm;
//! use bpf_builder::ctx::{XdpAction, xdp_md};
//! use bpf_builder::insn::{JmpOp, Reg::*, Size};
//!
//! // Drop frames shorter than an Ethernet header, pass the rest.
//! let mut a = Asm::new();
//! let drop = a.new_label();
//! a.ldx(Size::W, R2, R1, xdp_md::DATA);
//! a.ldx(Size::W, R3, R1, xdp_md::DATA_END);
//! a.add64(R2, 14);
//! a.jmp(JmpOp::Gt, R2, R3, drop);
//! a.mov64(R0, XdpAction::Pass);
//! a.exit();
//! a.bind(drop);
//! a.mov64(R0, XdpAction::Drop);
//! a.exit();
//! a.finish().unwrap();
//! ```
//!
//! # What helpers return
//!
//! Helpers return in R0 and clobber R1-R5. The conventions programs most
//! often get wrong:
//!
//! - `bpf_map_lookup_elem` returns a pointer to the value, or NULL (0)
//!   when the key is absent. The verifier refuses any use of the pointer
//!   before a test against 0 (`invalid mem access 'map_value_or_null'`).
//!   Arrays never return NULL for an index below `max_entries`.
//! - `bpf_map_update_elem` and `bpf_map_delete_elem` return 0 or a
//!   negative errno: `-ENOENT` (delete of an absent key, `BPF_EXIST` on an
//!   absent key), `-EEXIST` (`BPF_NOEXIST` on a present key), `-E2BIG`
//!   (the map is full, or an array index past `max_entries`).
//! - `bpf_redirect_map` returns [`XdpAction::Redirect`] when the entry
//!   exists (the frame goes out after the program returns that value); when
//!   it does not, the low two bits of `flags`, an [`XdpAction`] from
//!   `Aborted` to `Tx`, so `flags = XDP_PASS` passes frames that have no
//!   target. Other bits than those and `BPF_F_BROADCAST` /
//!   `BPF_F_EXCLUDE_INGRESS` make it return `XDP_ABORTED`.
//! - `bpf_redirect` returns `XDP_REDIRECT` in XDP (`XDP_ABORTED` for
//!   flags it does not know), and [`TcAction::Redirect`] in tc
//!   ([`TcAction::Shot`] for unknown flags).
//! - `bpf_tail_call` does not return when it jumps. When it returns, the
//!   slot was empty, the index past `max_entries`, or the chain already
//!   33 calls long, and the program goes on after the call.
//! - `bpf_xdp_adjust_head`, `bpf_xdp_adjust_meta`, `bpf_xdp_adjust_tail`,
//!   `bpf_skb_pull_data`, `bpf_skb_change_head` and
//!   `bpf_skb_adjust_room` return 0 or a negative errno (`-EINVAL` when
//!   the packet cannot move that far). After any of them, packet pointers
//!   taken before the call are invalid: load `data` / `data_end` from the
//!   context again and check bounds again.
//! - `bpf_xdp_get_buff_len` returns the length of the whole frame,
//!   fragments included (`data_end - data` covers only the first buffer).
//! - `bpf_ringbuf_reserve` returns a pointer or NULL (the buffer is full);
//!   `bpf_ringbuf_output` and `bpf_perf_event_output` return 0 or a
//!   negative errno.
//! - `bpf_fib_lookup` returns a `BPF_FIB_LKUP_RET_*` code (0 when the
//!   route and the neighbour were found) or a negative errno.
//! - `bpf_probe_read_kernel` / `_user` return 0 or a negative errno and
//!   zero the destination on failure.

use crate::insn::Operand;
use crate::pod::Pod;

mod tracing;
pub use tracing::{perf_event_data, pt_regs, raw_tracepoint_args, tracing_args};

/// Defines an action enum with its kernel values and names.
macro_rules! actions {
    (
        $(#[$doc:meta])*
        $name:ident {
            $($(#[$vdoc:meta])* $variant:ident = $value:literal, $cname:literal;)*
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        #[repr(i32)]
        pub enum $name {
            $($(#[$vdoc])* $variant = $value,)*
        }

        impl $name {
            /// Every action, in the order of their values.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The value the program returns.
            pub const fn value(self) -> i32 {
                self as i32
            }

            /// The action a program's return value stands for, if any.
            pub fn from_value(value: i32) -> Option<$name> {
                Self::ALL.iter().copied().find(|a| a.value() == value)
            }

            /// The kernel's name of the action.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $cname,)*
                }
            }
        }

        impl From<$name> for i32 {
            fn from(action: $name) -> i32 {
                action.value()
            }
        }

        /// The action as an immediate, for `a.mov64(R0, action)`.
        impl From<$name> for Operand {
            fn from(action: $name) -> Operand {
                Operand::Imm(action.value())
            }
        }
    };
}

actions! {
    /// What an XDP program returns (`enum xdp_action`).
    XdpAction {
        /// `XDP_ABORTED` (0): drop, and raise the `xdp_exception`
        /// tracepoint: the program failed.
        Aborted = 0, "XDP_ABORTED";
        /// `XDP_DROP` (1): drop the frame.
        Drop = 1, "XDP_DROP";
        /// `XDP_PASS` (2): let the frame go on to the network stack.
        Pass = 2, "XDP_PASS";
        /// `XDP_TX` (3): send the frame back out of the device it came in on.
        Tx = 3, "XDP_TX";
        /// `XDP_REDIRECT` (4): send it where `bpf_redirect` or
        /// `bpf_redirect_map` said (return what the helper returned).
        Redirect = 4, "XDP_REDIRECT";
    }
}

actions! {
    /// What a tc classifier returns in direct-action mode (`TC_ACT_*` of
    /// `pkt_cls.h`), as cls_bpf runs it. tcx programs return
    /// [`TcxAction`]s, the same values under the names the tcx API gives
    /// those it defines.
    TcAction {
        /// `TC_ACT_UNSPEC` (-1): the default action of the qdisc (for
        /// cls_bpf, the next filter).
        Unspec = -1, "TC_ACT_UNSPEC";
        /// `TC_ACT_OK` (0): deliver the packet.
        Ok = 0, "TC_ACT_OK";
        /// `TC_ACT_RECLASSIFY` (1): classify again from the start.
        Reclassify = 1, "TC_ACT_RECLASSIFY";
        /// `TC_ACT_SHOT` (2): drop the packet.
        Shot = 2, "TC_ACT_SHOT";
        /// `TC_ACT_PIPE` (3): go on with the next action.
        Pipe = 3, "TC_ACT_PIPE";
        /// `TC_ACT_STOLEN` (4): consumed; the stack forgets the packet.
        Stolen = 4, "TC_ACT_STOLEN";
        /// `TC_ACT_QUEUED` (5): queued for later; like `Stolen`.
        Queued = 5, "TC_ACT_QUEUED";
        /// `TC_ACT_REPEAT` (6): run the action again.
        Repeat = 6, "TC_ACT_REPEAT";
        /// `TC_ACT_REDIRECT` (7): send the packet where `bpf_redirect`
        /// said (return what the helper returned).
        Redirect = 7, "TC_ACT_REDIRECT";
        /// `TC_ACT_TRAP` (8): hand the packet to the CPU (offloaded
        /// filters; like `Shot` in software).
        Trap = 8, "TC_ACT_TRAP";
    }
}

actions! {
    /// What a tcx program returns (`TCX_*` of `bpf.h`).
    TcxAction {
        /// `TCX_NEXT` (-1): run the next program of the chain; after the
        /// last, the packet goes on.
        Next = -1, "TCX_NEXT";
        /// `TCX_PASS` (0): deliver the packet, skipping the rest of the chain.
        Pass = 0, "TCX_PASS";
        /// `TCX_DROP` (2): drop the packet.
        Drop = 2, "TCX_DROP";
        /// `TCX_REDIRECT` (7): send the packet where `bpf_redirect` said.
        Redirect = 7, "TCX_REDIRECT";
    }
}

/// Field offsets of `struct xdp_md`, the context of XDP programs (R1 at
/// entry): 32-bit fields, read with `ldx(Size::W, dst, R1, offset)`. The
/// kernel rewrites these loads; `data`, `data_meta` and `data_end` become
/// packet pointers.
pub mod xdp_md {
    /// `data`: the first byte of the frame.
    pub const DATA: i16 = 0;
    /// `data_end`: one past the last byte of the first buffer.
    pub const DATA_END: i16 = 4;
    /// `data_meta`: the start of the metadata area before `data`
    /// (`bpf_xdp_adjust_meta`); equal to `data` when there is none.
    pub const DATA_META: i16 = 8;
    /// `ingress_ifindex`: the interface the frame came in on.
    pub const INGRESS_IFINDEX: i16 = 12;
    /// `rx_queue_index`: its receive queue.
    pub const RX_QUEUE_INDEX: i16 = 16;
    /// `egress_ifindex`: the interface a devmap program (`BPF_XDP_DEVMAP`)
    /// sends on; 0 elsewhere.
    pub const EGRESS_IFINDEX: i16 = 20;
    /// Size of the struct in bytes.
    pub const SIZE: usize = 24;
}

/// Field offsets of `struct __sk_buff`, the context of tc, tcx and socket
/// filter programs (R1 at entry). 32-bit fields unless a field's
/// documentation says otherwise; which fields a program type may read or
/// write is the verifier's call (`invalid bpf_context access` otherwise).
pub mod sk_buff {
    /// `len`: the packet's length, all fragments included.
    pub const LEN: i16 = 0;
    /// `pkt_type`: `PACKET_HOST` (0), `PACKET_BROADCAST` (1), ... .
    pub const PKT_TYPE: i16 = 4;
    /// `mark`: the skb mark (writable by tc).
    pub const MARK: i16 = 8;
    /// `queue_mapping`: the transmit queue.
    pub const QUEUE_MAPPING: i16 = 12;
    /// `protocol`: the EtherType, in network byte order.
    pub const PROTOCOL: i16 = 16;
    /// `vlan_present`: 1 when the VLAN tag was taken out of the frame.
    pub const VLAN_PRESENT: i16 = 20;
    /// `vlan_tci`: that tag's TCI.
    pub const VLAN_TCI: i16 = 24;
    /// `vlan_proto`: that tag's protocol (0x8100 or 0x88a8), network order.
    pub const VLAN_PROTO: i16 = 28;
    /// `priority`: the skb priority.
    pub const PRIORITY: i16 = 32;
    /// `ingress_ifindex`: the interface the packet came in on.
    pub const INGRESS_IFINDEX: i16 = 36;
    /// `ifindex`: the interface the packet is on now.
    pub const IFINDEX: i16 = 40;
    /// `tc_index`: the traffic-control index.
    pub const TC_INDEX: i16 = 44;
    /// `cb[5]`: five 32-bit words of scratch space shared between programs
    /// (20 bytes).
    pub const CB: i16 = 48;
    /// `hash`: the flow hash.
    pub const HASH: i16 = 68;
    /// `tc_classid`: the class id (writable by tc).
    pub const TC_CLASSID: i16 = 72;
    /// `data`: the first byte of the linear data.
    pub const DATA: i16 = 76;
    /// `data_end`: one past the last byte of the linear data.
    pub const DATA_END: i16 = 80;
    /// `napi_id`: the NAPI instance that received the packet.
    pub const NAPI_ID: i16 = 84;
    /// `family`: the socket's address family (`sk_skb` programs).
    pub const FAMILY: i16 = 88;
    /// `remote_ip4`: network byte order (`sk_skb` programs).
    pub const REMOTE_IP4: i16 = 92;
    /// `local_ip4`: network byte order (`sk_skb` programs).
    pub const LOCAL_IP4: i16 = 96;
    /// `remote_ip6[4]`: network byte order, 16 bytes (`sk_skb` programs).
    pub const REMOTE_IP6: i16 = 100;
    /// `local_ip6[4]`: network byte order, 16 bytes (`sk_skb` programs).
    pub const LOCAL_IP6: i16 = 116;
    /// `remote_port`: network byte order (`sk_skb` programs).
    pub const REMOTE_PORT: i16 = 132;
    /// `local_port`: host byte order (`sk_skb` programs).
    pub const LOCAL_PORT: i16 = 136;
    /// `data_meta`: the start of the metadata area before `data`.
    pub const DATA_META: i16 = 140;
    /// `flow_keys`: pointer to `struct bpf_flow_keys` (flow dissectors;
    /// 64-bit).
    pub const FLOW_KEYS: i16 = 144;
    /// `tstamp`: the packet's time stamp in nanoseconds (64-bit).
    pub const TSTAMP: i16 = 152;
    /// `wire_len`: the packet's length on the wire.
    pub const WIRE_LEN: i16 = 160;
    /// `gso_segs`: segments of a GSO packet.
    pub const GSO_SEGS: i16 = 164;
    /// `sk`: pointer to `struct bpf_sock`, or NULL (64-bit).
    pub const SK: i16 = 168;
    /// `gso_size`: the size of each GSO segment.
    pub const GSO_SIZE: i16 = 176;
    /// `tstamp_type`: what `tstamp` measures (8-bit).
    pub const TSTAMP_TYPE: i16 = 180;
    /// `hwtstamp`: the hardware time stamp (64-bit).
    pub const HWTSTAMP: i16 = 184;
    /// Size of the struct in bytes.
    pub const SIZE: usize = 192;
}

/// `struct xdp_md` as `BPF_PROG_TEST_RUN` takes it for the input context
/// of an XDP test run ([`TestRun::ctx_in`](crate::run::TestRun::ctx_in)):
/// `data` and `data_end` are offsets into the input data, `data` past the
/// metadata area that starts at `data_meta` (0).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct XdpMd {
    /// Where the frame starts in the input (the metadata area is before).
    pub data: u32,
    /// Where it ends: the input's length.
    pub data_end: u32,
    /// Where the metadata area starts; the kernel wants 0.
    pub data_meta: u32,
    /// The interface the frame comes in on (0: none; else a device of
    /// the caller's namespace).
    pub ingress_ifindex: u32,
    /// Its receive queue.
    pub rx_queue_index: u32,
    /// Must be 0 for a test run.
    pub egress_ifindex: u32,
}

impl Pod for XdpMd {
    const SIZE: usize = xdp_md::SIZE;

    fn write(&self, out: &mut [u8]) {
        assert_eq!(out.len(), Self::SIZE, "Pod::write takes SIZE bytes");
        let fields = [
            (xdp_md::DATA, self.data),
            (xdp_md::DATA_END, self.data_end),
            (xdp_md::DATA_META, self.data_meta),
            (xdp_md::INGRESS_IFINDEX, self.ingress_ifindex),
            (xdp_md::RX_QUEUE_INDEX, self.rx_queue_index),
            (xdp_md::EGRESS_IFINDEX, self.egress_ifindex),
        ];
        for (offset, value) in fields {
            let at = offset as usize;
            value.write(&mut out[at..at + 4]);
        }
    }

    fn read(bytes: &[u8]) -> Self {
        assert_eq!(bytes.len(), Self::SIZE, "Pod::read takes SIZE bytes");
        let field = |offset: i16| u32::read(&bytes[offset as usize..offset as usize + 4]);
        XdpMd {
            data: field(xdp_md::DATA),
            data_end: field(xdp_md::DATA_END),
            data_meta: field(xdp_md::DATA_META),
            ingress_ifindex: field(xdp_md::INGRESS_IFINDEX),
            rx_queue_index: field(xdp_md::RX_QUEUE_INDEX),
            egress_ifindex: field(xdp_md::EGRESS_IFINDEX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_have_the_kernel_values() {
        let xdp: Vec<i32> = XdpAction::ALL.iter().map(|a| a.value()).collect();
        assert_eq!(xdp, [0, 1, 2, 3, 4]);
        assert_eq!(XdpAction::from_value(4), Some(XdpAction::Redirect));
        assert_eq!(XdpAction::from_value(5), None);
        assert_eq!(XdpAction::Pass.name(), "XDP_PASS");
        assert_eq!(i32::from(TcAction::Unspec), -1);
        assert_eq!(TcAction::Shot.value(), 2);
        assert_eq!(TcAction::Redirect.value(), 7);
        assert_eq!(TcxAction::Next.value(), -1);
        assert_eq!(TcxAction::Pass.value(), TcAction::Ok.value());
        assert_eq!(TcxAction::Drop.value(), TcAction::Shot.value());
        assert_eq!(TcxAction::Redirect.value(), TcAction::Redirect.value());
        assert_eq!(Operand::from(XdpAction::Tx), Operand::Imm(3));
    }

    #[test]
    fn xdp_md_round_trips() {
        let md = XdpMd {
            data: 20,
            data_end: 80,
            ingress_ifindex: 3,
            ..XdpMd::default()
        };
        let bytes = md.to_bytes();
        assert_eq!(bytes.len(), 24);
        assert_eq!(&bytes[4..8], &80u32.to_ne_bytes());
        assert_eq!(&bytes[12..16], &3u32.to_ne_bytes());
        assert_eq!(XdpMd::read(&bytes), md);
    }
}
