//! Route netlink, just enough for XDP: attach, replace and detach a
//! program on a device with `RTM_SETLINK`/`IFLA_XDP`, and read what is
//! attached (and the device type) with `RTM_GETLINK`.
//!
//! Messages are built and parsed as plain bytes (safe code); only the
//! socket calls are `unsafe`. Extended acks are requested so the kernel's
//! own explanation ("Active program does not match expected", ...) comes
//! back with the errno.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
/// The error message carries TLVs (the extended ack) after the header.
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;
const NLMSGERR_ATTR_MSG: u16 = 1;
const SOL_NETLINK: libc::c_int = 270;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;

const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
/// `IFLA_ADDRESS`: the link-layer address.
const IFLA_ADDRESS: u16 = 1;
const IFLA_XDP: u16 = 43;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_ATTACHED: u16 = 2;
const IFLA_XDP_FLAGS: u16 = 3;
const IFLA_XDP_PROG_ID: u16 = 4;
const IFLA_XDP_DRV_PROG_ID: u16 = 5;
const IFLA_XDP_SKB_PROG_ID: u16 = 6;
const IFLA_XDP_HW_PROG_ID: u16 = 7;
const IFLA_XDP_EXPECTED_FD: u16 = 8;
/// `sizeof(struct ifinfomsg)`.
const IFINFOMSG_LEN: usize = 16;

/// `XDP_FLAGS_*` values of `linux/if_link.h`.
pub mod xdp_flags {
    /// Fail if a program is already attached.
    pub const UPDATE_IF_NOEXIST: u32 = 1;
    /// Generic (skb) mode.
    pub const SKB_MODE: u32 = 2;
    /// Driver (native) mode.
    pub const DRV_MODE: u32 = 4;
    /// Hardware offload.
    pub const HW_MODE: u32 = 8;
    /// Replace only if the attached program is `IFLA_XDP_EXPECTED_FD`.
    pub const REPLACE: u32 = 16;
}

/// The kernel's answer to an `IFLA_XDP` request that failed.
#[derive(Debug, thiserror::Error)]
#[error("{source}{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
pub struct NetlinkError {
    /// The errno.
    pub source: io::Error,
    /// The kernel's extended-ack message, when it sent one.
    pub message: Option<String>,
}

impl NetlinkError {
    fn io(source: io::Error) -> NetlinkError {
        NetlinkError {
            source,
            message: None,
        }
    }
}

/// What `RTM_GETLINK` reports about XDP on a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct XdpState {
    /// `XDP_ATTACHED_*`: 0 none, 1 driver, 2 generic, 3 offload, 4 several.
    pub attached: u8,
    /// The program when exactly one mode is in use.
    pub prog_id: u32,
    /// The driver-mode program (0: none).
    pub drv_prog_id: u32,
    /// The generic-mode program (0: none).
    pub skb_prog_id: u32,
    /// The offloaded program (0: none).
    pub hw_prog_id: u32,
}

/// Sets (or with `prog_fd` = `None`, removes) the XDP program of
/// `ifindex`. `flags` are `xdp_flags`; with `xdp_flags::REPLACE`,
/// `expected_fd` is the program that must be attached now (`None`: none).
pub fn set_xdp(
    ifindex: u32,
    prog_fd: Option<BorrowedFd<'_>>,
    flags: u32,
    expected_fd: Option<BorrowedFd<'_>>,
) -> Result<(), NetlinkError> {
    let mut xdp = Vec::new();
    let fd = prog_fd.map_or(-1, |fd| fd.as_raw_fd());
    put_attr(&mut xdp, IFLA_XDP_FD, &fd.to_ne_bytes());
    if flags != 0 {
        put_attr(&mut xdp, IFLA_XDP_FLAGS, &flags.to_ne_bytes());
    }
    if flags & xdp_flags::REPLACE != 0 {
        let old = expected_fd.map_or(-1, |fd| fd.as_raw_fd());
        put_attr(&mut xdp, IFLA_XDP_EXPECTED_FD, &old.to_ne_bytes());
    }
    let mut body = ifinfomsg(ifindex);
    put_attr(&mut body, IFLA_XDP | NLA_F_NESTED, &xdp);
    let sock = Socket::open().map_err(NetlinkError::io)?;
    sock.request(RTM_SETLINK, &body)?;
    Ok(())
}

/// What XDP programs `ifindex` has.
pub fn get_xdp(ifindex: u32) -> Result<XdpState, NetlinkError> {
    let sock = Socket::open().map_err(NetlinkError::io)?;
    let reply = sock.request(RTM_GETLINK, &ifinfomsg(ifindex))?;
    let bad = |what: &str| {
        NetlinkError::io(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("RTM_GETLINK reply: {what}"),
        ))
    };
    let attrs = reply
        .get(IFINFOMSG_LEN..)
        .ok_or_else(|| bad("shorter than ifinfomsg"))?;
    let mut state = XdpState::default();
    for (ty, value) in attrs_of(attrs) {
        if ty != IFLA_XDP {
            continue;
        }
        for (ty, v) in attrs_of(value) {
            let u32_of = |v: &[u8]| {
                v.get(..4)
                    .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            };
            match ty {
                IFLA_XDP_ATTACHED => state.attached = v.first().copied().unwrap_or(0),
                IFLA_XDP_PROG_ID => state.prog_id = u32_of(v),
                IFLA_XDP_DRV_PROG_ID => state.drv_prog_id = u32_of(v),
                IFLA_XDP_SKB_PROG_ID => state.skb_prog_id = u32_of(v),
                IFLA_XDP_HW_PROG_ID => state.hw_prog_id = u32_of(v),
                _ => {}
            }
        }
    }
    Ok(state)
}

/// The device type of `ifindex` (`ifinfomsg.ifi_type`, an `ARPHRD_*`
/// value).
pub fn get_device_type(ifindex: u32) -> Result<u16, NetlinkError> {
    let sock = Socket::open().map_err(NetlinkError::io)?;
    let reply = sock.request(RTM_GETLINK, &ifinfomsg(ifindex))?;
    // struct ifinfomsg { u8 family; u8 pad; u16 type; i32 index; ... }
    match reply.get(2..4) {
        Some(t) => Ok(u16::from_ne_bytes([t[0], t[1]])),
        None => Err(NetlinkError::io(io::Error::new(
            io::ErrorKind::InvalidData,
            "RTM_GETLINK reply: shorter than ifinfomsg",
        ))),
    }
}

/// The link-layer address of `ifindex` (`IFLA_ADDRESS`: a MAC address
/// on Ethernet devices); `None` for a device without one.
pub fn get_address(ifindex: u32) -> Result<Option<Vec<u8>>, NetlinkError> {
    let sock = Socket::open().map_err(NetlinkError::io)?;
    let reply = sock.request(RTM_GETLINK, &ifinfomsg(ifindex))?;
    let attrs = reply.get(IFINFOMSG_LEN..).unwrap_or_default();
    Ok(attrs_of(attrs)
        .into_iter()
        .find(|(ty, _)| *ty == IFLA_ADDRESS)
        .map(|(_, v)| v.to_vec()))
}

/// An `ifinfomsg` for `ifindex` (family AF_UNSPEC, no flag changes).
fn ifinfomsg(ifindex: u32) -> Vec<u8> {
    let mut m = vec![0u8; IFINFOMSG_LEN];
    m[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    m
}

fn align4(n: usize) -> usize {
    n.next_multiple_of(4)
}

/// Appends one netlink attribute (header, value, padding).
fn put_attr(buf: &mut Vec<u8>, ty: u16, value: &[u8]) {
    let len = 4 + value.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(value);
    buf.resize(align4(buf.len()), 0);
}

/// The attributes in `buf` as (type without flags, value); stops at the
/// first malformed one.
fn attrs_of(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([buf[0], buf[1]]));
        let ty = u16::from_ne_bytes([buf[2], buf[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > buf.len() {
            break;
        }
        out.push((ty, &buf[4..len]));
        buf = &buf[align4(len).min(buf.len())..];
    }
    out
}

/// A `NETLINK_ROUTE` socket, closed on drop.
struct Socket {
    fd: OwnedFd,
}

impl Socket {
    fn open() -> io::Result<Socket> {
        // SAFETY: plain socket(2) call; it takes no pointers.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` was just returned by socket(2); nobody else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sock = Socket { fd };
        // Best effort: without them we still get the errno.
        sock.set_opt(NETLINK_EXT_ACK, 1);
        sock.set_opt(NETLINK_CAP_ACK, 1);
        Ok(sock)
    }

    fn set_opt(&self, opt: libc::c_int, value: libc::c_int) {
        // SAFETY: `value` is a live c_int and the length passed is its size.
        unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                SOL_NETLINK,
                opt,
                (&raw const value).cast(),
                mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }

    /// Sends one request with an ack and returns the payload of the first
    /// reply message of type `ty` (empty if only the ack came back).
    fn request(&self, ty: u16, body: &[u8]) -> Result<Vec<u8>, NetlinkError> {
        let seq = 1u32;
        let mut msg = Vec::with_capacity(NLMSG_HDRLEN + body.len());
        let len = (NLMSG_HDRLEN + body.len()) as u32;
        msg.extend_from_slice(&len.to_ne_bytes());
        msg.extend_from_slice(&ty.to_ne_bytes());
        msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        self.send(&msg).map_err(NetlinkError::io)?;

        let mut payload = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = self.recv(&mut buf).map_err(NetlinkError::io)?;
            let mut rest = &buf[..n];
            while rest.len() >= NLMSG_HDRLEN {
                let mlen = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                let mtype = u16::from_ne_bytes([rest[4], rest[5]]);
                let mflags = u16::from_ne_bytes([rest[6], rest[7]]);
                let mseq = u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]);
                if mlen < NLMSG_HDRLEN || mlen > rest.len() {
                    return Err(NetlinkError::io(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "truncated netlink message",
                    )));
                }
                let data = &rest[NLMSG_HDRLEN..mlen];
                rest = &rest[align4(mlen).min(rest.len())..];
                if mseq != seq {
                    continue;
                }
                match mtype {
                    NLMSG_ERROR => return parse_error(data, mflags).map(|()| payload),
                    NLMSG_DONE => return Ok(payload),
                    // RTM_NEWLINK (16) answers RTM_GETLINK; keep the first.
                    t if (t == ty || (ty == RTM_GETLINK && t == 16)) && payload.is_empty() => {
                        payload = data.to_vec();
                    }
                    _ => {}
                }
            }
        }
    }

    fn send(&self, msg: &[u8]) -> io::Result<()> {
        // SAFETY: an all-zero sockaddr_nl is valid; we set the family.
        let mut addr: libc::sockaddr_nl = unsafe { mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: `msg` and `addr` are live for the call and the lengths
        // passed are theirs.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&raw const addr).cast(),
                mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: `buf` is writable for its whole length during the call.
            let r =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if r >= 0 {
                return Ok(r as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// An `NLMSG_ERROR` payload: `{int error; nlmsghdr request; TLVs}`. Error 0
/// is the ack of a success.
fn parse_error(data: &[u8], flags: u16) -> Result<(), NetlinkError> {
    let Some(code) = data.get(..4) else {
        return Err(NetlinkError::io(io::Error::new(
            io::ErrorKind::InvalidData,
            "truncated netlink error",
        )));
    };
    let errno = -i32::from_ne_bytes([code[0], code[1], code[2], code[3]]);
    if errno == 0 {
        return Ok(());
    }
    // With NETLINK_CAP_ACK only the request's header is echoed.
    let mut message = None;
    if flags & NLM_F_ACK_TLVS != 0
        && let Some(tlvs) = data.get(4 + NLMSG_HDRLEN..)
    {
        for (ty, v) in attrs_of(tlvs) {
            if ty == NLMSGERR_ATTR_MSG {
                let text = v.split(|&b| b == 0).next().unwrap_or(v);
                message = Some(String::from_utf8_lossy(text).into_owned());
            }
        }
    }
    Err(NetlinkError {
        source: io::Error::from_raw_os_error(errno),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_with_padding() {
        let mut buf = Vec::new();
        put_attr(&mut buf, 3, &[1, 2, 3]);
        put_attr(&mut buf, 4 | NLA_F_NESTED, &7u32.to_ne_bytes());
        assert_eq!(buf.len(), 8 + 8);
        let attrs = attrs_of(&buf);
        assert_eq!(
            attrs,
            vec![(3, &[1u8, 2, 3][..]), (4, &7u32.to_ne_bytes()[..])]
        );
    }

    #[test]
    fn error_payload_with_extended_ack() {
        let mut data = (-libc::EEXIST).to_ne_bytes().to_vec();
        data.extend_from_slice(&[0u8; NLMSG_HDRLEN]);
        put_attr(
            &mut data,
            NLMSGERR_ATTR_MSG,
            b"Active program does not match expected\0",
        );
        let e = parse_error(&data, NLM_F_ACK_TLVS).unwrap_err();
        assert_eq!(e.source.raw_os_error(), Some(libc::EEXIST));
        assert_eq!(
            e.message.as_deref(),
            Some("Active program does not match expected")
        );
        assert!(parse_error(&0i32.to_ne_bytes(), 0).is_ok());
    }
}
