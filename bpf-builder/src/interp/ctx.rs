//! The program contexts (`struct xdp_md`, `struct __sk_buff`) and the
//! rules by which programs read and write them: which offsets and sizes
//! each program type may access, and what the kernel's rewrite of those
//! accesses returns (narrow reads, 16-bit fields, big-endian protocols).

use super::error::Fault;
use crate::ctx::{sk_buff, xdp_md};

/// `struct xdp_md` as an XDP program sees it, apart from the packet
/// pointers (those come from the packet and metadata given to the run).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpCtx {
    /// `ingress_ifindex`.
    pub ingress_ifindex: u32,
    /// `rx_queue_index`.
    pub rx_queue_index: u32,
    /// `egress_ifindex` (devmap programs).
    pub egress_ifindex: u32,
}

impl XdpCtx {
    /// What `BPF_PROG_TEST_RUN` gives when no ifindex is set: the
    /// loopback device (ifindex 1), queue 0.
    pub fn test_run() -> XdpCtx {
        XdpCtx {
            ingress_ifindex: 1,
            ..XdpCtx::default()
        }
    }
}

/// `skb->pkt_type` values.
pub mod pkt_type {
    /// To us.
    pub const HOST: u8 = 0;
    /// To all.
    pub const BROADCAST: u8 = 1;
    /// To group.
    pub const MULTICAST: u8 = 2;
    /// To someone else.
    pub const OTHERHOST: u8 = 3;
    /// Outgoing.
    pub const OUTGOING: u8 = 4;
}

/// The socket buffer a tc program or socket filter runs on: the fields of
/// `struct __sk_buff` apart from the data pointers and lengths (those come
/// from the frame given to the run).
///
/// `protocol` and `vlan_proto` are ethertypes as numbers (`0x0800`); the
/// program reads them in network byte order, as from the kernel.
/// `vlan_present` reads 1 when `vlan_proto` or `vlan_tci` is non-zero.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SkbCtx {
    /// Where `skb->data` starts in the frame given to the run: 0 for tc;
    /// 14 for socket filters run by `BPF_PROG_TEST_RUN`, which pulls the
    /// Ethernet header. `len` is the frame length minus this.
    pub data_offset: usize,
    /// Where the network header starts in the frame (`SKF_NET_OFF` loads).
    pub network_offset: usize,
    /// `pkt_type` (3 bits, see [`pkt_type`]).
    pub pkt_type: u8,
    /// `mark`.
    pub mark: u32,
    /// `queue_mapping`.
    pub queue_mapping: u16,
    /// `protocol`, an ethertype.
    pub protocol: u16,
    /// `vlan_tci`.
    pub vlan_tci: u16,
    /// `vlan_proto`, an ethertype (0 when untagged).
    pub vlan_proto: u16,
    /// `priority`.
    pub priority: u32,
    /// `ingress_ifindex`.
    pub ingress_ifindex: u32,
    /// `ifindex`.
    pub ifindex: u32,
    /// `tc_index`.
    pub tc_index: u16,
    /// `cb[5]`.
    pub cb: [u32; 5],
    /// `hash`.
    pub hash: u32,
    /// `tc_classid`.
    pub tc_classid: u16,
    /// `napi_id`.
    pub napi_id: u32,
    /// `wire_len`.
    pub wire_len: u32,
    /// `gso_segs`.
    pub gso_segs: u16,
    /// `gso_size`.
    pub gso_size: u16,
    /// `tstamp`.
    pub tstamp: u64,
    /// `hwtstamp`.
    pub hwtstamp: u64,
}

/// Ethernet header length.
const ETH_HLEN: usize = 14;

impl SkbCtx {
    /// The socket buffer the kernel builds for an Ethernet `frame` received
    /// on a device with address `dev_addr` and broadcast address
    /// `broadcast` (as `eth_type_trans` does): protocol and packet type
    /// from the header, data at the MAC header (as tc sees it).
    pub fn from_frame(frame: &[u8], dev_addr: [u8; 6], broadcast: [u8; 6]) -> SkbCtx {
        let dst: [u8; 6] = frame
            .get(..6)
            .and_then(|d| d.try_into().ok())
            .unwrap_or_default();
        let pkt_type = if dst == dev_addr {
            pkt_type::HOST
        } else if dst[0] & 1 != 0 {
            if dst == broadcast {
                pkt_type::BROADCAST
            } else {
                pkt_type::MULTICAST
            }
        } else {
            pkt_type::OTHERHOST
        };
        let ethertype = frame
            .get(12..14)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
        let protocol = if ethertype >= 0x0600 {
            ethertype
        } else if frame.get(14..16) == Some(&[0xff, 0xff]) {
            0x0001 // ETH_P_802_3: raw IPX-style 802.3
        } else {
            0x0004 // ETH_P_802_2
        };
        SkbCtx {
            network_offset: ETH_HLEN,
            pkt_type,
            protocol,
            wire_len: frame.len() as u32,
            ..SkbCtx::default()
        }
    }

    /// What `BPF_PROG_TEST_RUN` builds for a tc program: `frame` received on
    /// the loopback device (ifindex 1, address and broadcast all zeros).
    pub fn test_run_tc(frame: &[u8]) -> SkbCtx {
        SkbCtx {
            ifindex: 1,
            ..SkbCtx::from_frame(frame, [0; 6], [0; 6])
        }
    }

    /// What `BPF_PROG_TEST_RUN` builds for a socket filter: as for tc, but
    /// with the Ethernet header pulled (data starts at the network header).
    pub fn test_run_socket_filter(frame: &[u8]) -> SkbCtx {
        SkbCtx {
            data_offset: ETH_HLEN,
            wire_len: frame.len().saturating_sub(ETH_HLEN) as u32,
            ..SkbCtx::test_run_tc(frame)
        }
    }

    /// `vlan_present` as the kernel computes it.
    pub fn vlan_present(&self) -> bool {
        self.vlan_proto != 0 || self.vlan_tci != 0
    }
}

/// Which context and rules a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProgKind {
    /// XDP.
    Xdp,
    /// tc classifier (`SCHED_CLS`).
    Tc,
    /// Socket filter.
    Socket,
}

/// What a context read yields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CtxRead {
    /// A number.
    Scalar(u64),
    /// `data`.
    Data,
    /// `data_end`.
    DataEnd,
    /// `data_meta`.
    DataMeta,
}

/// `struct xdp_md` size.
const XDP_MD_SIZE: i64 = xdp_md::SIZE as i64;
/// `struct __sk_buff` size.
const SKB_SIZE: i64 = sk_buff::SIZE as i64;

/// `struct __sk_buff` field offsets ([`sk_buff`]) as the interpreter's
/// 64-bit offsets.
mod off {
    use crate::ctx::sk_buff as f;

    macro_rules! widen {
        ($($name:ident),*) => {$(pub const $name: i64 = f::$name as i64;)*};
    }

    widen!(
        LEN,
        PKT_TYPE,
        MARK,
        QUEUE_MAPPING,
        PROTOCOL,
        VLAN_PRESENT,
        VLAN_TCI,
        VLAN_PROTO,
        PRIORITY,
        INGRESS_IFINDEX,
        IFINDEX,
        TC_INDEX,
        CB,
        HASH,
        TC_CLASSID,
        DATA,
        DATA_END,
        NAPI_ID,
        FAMILY,
        DATA_META,
        FLOW_KEYS,
        TSTAMP,
        WIRE_LEN,
        GSO_SEGS,
        SK,
        GSO_SIZE,
        TSTAMP_TYPE,
        HWTSTAMP
    );
    /// One past `cb[5]`.
    pub const CB_END: i64 = CB + 20;
    /// One past `local_port`, the last field of `sk_skb` programs.
    pub const LOCAL_PORT_END: i64 = f::LOCAL_PORT as i64 + 4;
}

/// Reads `size` bytes at `off` of an `xdp_md`.
pub(crate) fn xdp_read(ctx: &XdpCtx, o: i64, size: usize) -> Result<CtxRead, Fault> {
    let refuse = Fault::Ctx {
        off: o,
        size,
        write: false,
    };
    if !(0..XDP_MD_SIZE).contains(&o) || size != 4 || o % 4 != 0 {
        return Err(refuse);
    }
    Ok(match o as i16 {
        xdp_md::DATA => CtxRead::Data,
        xdp_md::DATA_END => CtxRead::DataEnd,
        xdp_md::DATA_META => CtxRead::DataMeta,
        xdp_md::INGRESS_IFINDEX => CtxRead::Scalar(u64::from(ctx.ingress_ifindex)),
        xdp_md::RX_QUEUE_INDEX => CtxRead::Scalar(u64::from(ctx.rx_queue_index)),
        _ => CtxRead::Scalar(u64::from(ctx.egress_ifindex)),
    })
}

/// Whether the byte range `[o, o + size)` is refused outright by both skb
/// program types (fields of other program types, padding, kernel pointers
/// the interpreter cannot give).
fn skb_refused(kind: ProgKind, o: i64, size: i64, write: bool) -> bool {
    let end = o + size;
    let overlaps = |lo: i64, hi: i64| o < hi && end > lo;
    if overlaps(off::FAMILY, off::LOCAL_PORT_END)
        || overlaps(off::FLOW_KEYS, off::TSTAMP)
        || overlaps(off::SK, off::GSO_SIZE)
        || overlaps(off::TSTAMP_TYPE, off::HWTSTAMP)
    {
        return true;
    }
    if kind == ProgKind::Socket {
        let socket_refused = overlaps(off::TC_CLASSID, off::TC_CLASSID + 4)
            || overlaps(off::DATA, off::DATA_END + 4)
            || overlaps(off::DATA_META, off::DATA_META + 4)
            || overlaps(off::TSTAMP, off::TSTAMP + 8)
            || overlaps(off::WIRE_LEN, off::WIRE_LEN + 4)
            || overlaps(off::HWTSTAMP, off::HWTSTAMP + 8);
        if socket_refused {
            return true;
        }
        if write && !(o >= off::CB && end <= off::CB_END) {
            return true;
        }
    }
    if kind == ProgKind::Tc && write {
        let fields = [
            (off::MARK, 4),
            (off::TC_INDEX, 4),
            (off::PRIORITY, 4),
            (off::TC_CLASSID, 4),
            (off::CB, 20),
            (off::TSTAMP, 8),
            (off::QUEUE_MAPPING, 4),
        ];
        if !fields.iter().any(|&(f, n)| o >= f && end <= f + n) {
            return true;
        }
    }
    false
}

/// The value of the 4-byte (or 8-byte) field at `field` and the size the
/// kernel's rewrite loads it with (narrow reads shift only below that).
fn skb_field(skb: &SkbCtx, len: u32, field: i64) -> (u64, usize) {
    let be = |v: u16| u64::from(u16::from_ne_bytes(v.to_be_bytes()));
    match field {
        off::LEN => (u64::from(len), 4),
        off::PKT_TYPE => (u64::from(skb.pkt_type & 7), 1),
        off::MARK => (u64::from(skb.mark), 4),
        off::QUEUE_MAPPING => (u64::from(skb.queue_mapping), 2),
        off::PROTOCOL => (be(skb.protocol), 2),
        off::VLAN_PRESENT => (u64::from(skb.vlan_present()), 4),
        off::VLAN_TCI => (u64::from(skb.vlan_tci), 2),
        off::VLAN_PROTO => (be(skb.vlan_proto), 2),
        off::PRIORITY => (u64::from(skb.priority), 4),
        off::INGRESS_IFINDEX => (u64::from(skb.ingress_ifindex), 4),
        off::IFINDEX => (u64::from(skb.ifindex), 4),
        off::TC_INDEX => (u64::from(skb.tc_index), 2),
        off::HASH => (u64::from(skb.hash), 4),
        off::TC_CLASSID => (u64::from(skb.tc_classid), 2),
        off::NAPI_ID => (u64::from(skb.napi_id), 4),
        off::TSTAMP => (skb.tstamp, 8),
        off::WIRE_LEN => (u64::from(skb.wire_len), 4),
        off::GSO_SEGS => (u64::from(skb.gso_segs), 2),
        off::GSO_SIZE => (u64::from(skb.gso_size), 2),
        off::HWTSTAMP => (skb.hwtstamp, 8),
        _ => (0, 4),
    }
}

/// Reads `size` bytes at `o` of an `__sk_buff` whose data is `len` bytes.
pub(crate) fn skb_read(
    kind: ProgKind,
    skb: &SkbCtx,
    len: u32,
    o: i64,
    size: usize,
) -> Result<CtxRead, Fault> {
    let refuse = Fault::Ctx {
        off: o,
        size,
        write: false,
    };
    let n = size as i64;
    if kind == ProgKind::Tc && o == off::TSTAMP_TYPE && size == 1 {
        // tc may read the timestamp type (always unspecified here).
        return Ok(CtxRead::Scalar(0));
    }
    if !(0..SKB_SIZE).contains(&o) || o % n != 0 || skb_refused(kind, o, n, false) {
        return Err(refuse);
    }
    if (off::CB..off::CB_END).contains(&o) {
        // cb is plain memory: any aligned access inside it.
        if o + n > off::CB_END {
            return Err(refuse);
        }
        let mut bytes = [0u8; 20];
        for (i, w) in skb.cb.iter().enumerate() {
            bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        let at = (o - off::CB) as usize;
        let mut v = [0u8; 8];
        v[..size].copy_from_slice(&bytes[at..at + size]);
        return Ok(CtxRead::Scalar(u64::from_le_bytes(v)));
    }
    let inside = |f: i64, n: i64| o >= f && o < f + n;
    let pointer = inside(off::DATA, 4) || inside(off::DATA_END, 4) || inside(off::DATA_META, 4);
    let wide = inside(off::TSTAMP, 8) || inside(off::HWTSTAMP, 8);
    if (pointer && size != 4) || (wide && size != 8) {
        return Err(refuse);
    }
    match o {
        off::DATA => return Ok(CtxRead::Data),
        off::DATA_END => return Ok(CtxRead::DataEnd),
        off::DATA_META => return Ok(CtxRead::DataMeta),
        off::TSTAMP | off::HWTSTAMP => {
            if size != 8 {
                return Err(refuse);
            }
            return Ok(CtxRead::Scalar(skb_field(skb, len, o).0));
        }
        _ => {}
    }
    // A 4-byte field, read whole or narrow (1, 2 bytes).
    if size > 4 {
        return Err(refuse);
    }
    let field = o & !3;
    let (value, target) = skb_field(skb, len, field);
    if size >= target {
        // The kernel loads the (narrower) kernel field without shifting.
        return Ok(CtxRead::Scalar(value));
    }
    let shift = (o - field) * 8;
    let mask = (1u64 << (size * 8)) - 1;
    Ok(CtxRead::Scalar((value >> shift) & mask))
}

/// Writes `value` (`size` bytes) at `o` of an `__sk_buff`.
pub(crate) fn skb_write(
    kind: ProgKind,
    skb: &mut SkbCtx,
    o: i64,
    size: usize,
    value: u64,
) -> Result<(), Fault> {
    let refuse = Fault::Ctx {
        off: o,
        size,
        write: true,
    };
    let n = size as i64;
    if kind == ProgKind::Xdp
        || !(0..SKB_SIZE).contains(&o)
        || o % n != 0
        || skb_refused(kind, o, n, true)
    {
        return Err(refuse);
    }
    if (off::CB..off::CB_END).contains(&o) {
        let mut bytes = [0u8; 20];
        for (i, w) in skb.cb.iter().enumerate() {
            bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        let at = (o - off::CB) as usize;
        bytes[at..at + size].copy_from_slice(&value.to_le_bytes()[..size]);
        for (i, w) in skb.cb.iter_mut().enumerate() {
            *w = u32::from_le_bytes([
                bytes[i * 4],
                bytes[i * 4 + 1],
                bytes[i * 4 + 2],
                bytes[i * 4 + 3],
            ]);
        }
        return Ok(());
    }
    if (off::TSTAMP..off::TSTAMP + 8).contains(&o) {
        if size != 8 {
            return Err(refuse);
        }
        skb.tstamp = value;
        return Ok(());
    }
    if size != 4 {
        return Err(refuse);
    }
    let v = value as u32;
    match o {
        off::MARK => skb.mark = v,
        off::PRIORITY => skb.priority = v,
        off::TC_INDEX => skb.tc_index = v as u16,
        off::TC_CLASSID => skb.tc_classid = v as u16,
        // The kernel stores queue_mapping only below NO_QUEUE_MAPPING.
        off::QUEUE_MAPPING if v < 0xffff => skb.queue_mapping = v as u16,
        off::QUEUE_MAPPING => {}
        _ => return Err(refuse),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_reads_in_network_order_and_narrow_reads_shift() {
        let skb = SkbCtx {
            protocol: 0x86dd,
            mark: 0x1122_3344,
            ..SkbCtx::default()
        };
        let r = |o, size| skb_read(ProgKind::Tc, &skb, 60, o, size).unwrap();
        assert_eq!(r(16, 4), CtxRead::Scalar(0xdd86));
        assert_eq!(r(17, 1), CtxRead::Scalar(0xdd));
        assert_eq!(r(9, 1), CtxRead::Scalar(0x33));
        assert_eq!(r(10, 2), CtxRead::Scalar(0x1122));
        assert_eq!(r(0, 4), CtxRead::Scalar(60));
    }

    #[test]
    fn socket_filters_cannot_see_packet_pointers_or_write_mark() {
        let mut skb = SkbCtx::default();
        assert!(skb_read(ProgKind::Socket, &skb, 0, off::DATA, 4).is_err());
        assert!(skb_write(ProgKind::Socket, &mut skb, off::MARK, 4, 1).is_err());
        assert!(skb_write(ProgKind::Socket, &mut skb, off::CB + 4, 4, 7).is_ok());
        assert_eq!(skb.cb[1], 7);
        assert!(skb_write(ProgKind::Tc, &mut skb, off::MARK, 4, 9).is_ok());
        assert_eq!(skb.mark, 9);
        assert!(skb_write(ProgKind::Tc, &mut skb, off::LEN, 4, 9).is_err());
    }

    #[test]
    fn frames_get_protocol_and_packet_type() {
        let mut f = vec![0xffu8; 6];
        f.extend([2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        f.extend([0u8; 20]);
        let lo = SkbCtx::test_run_tc(&f);
        assert_eq!((lo.protocol, lo.pkt_type), (0x0800, pkt_type::MULTICAST));
        let eth = SkbCtx::from_frame(&f, [2, 0, 0, 0, 0, 2], [0xff; 6]);
        assert_eq!(eth.pkt_type, pkt_type::BROADCAST);
        f[12] = 0x00;
        f[13] = 0x40;
        assert_eq!(SkbCtx::test_run_tc(&f).protocol, 0x0004);
    }
}
