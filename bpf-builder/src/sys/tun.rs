//! A tun device (`/dev/net/tun`, IP packets without an Ethernet header)
//! that tests write packets into: the kernel receives each one on the
//! device as if from a wire, so XDP and tc ingress programs see them.
//!
//! The device is created in the network namespace of the calling thread
//! (see [`super::netns`]) and disappears when the value is dropped.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;

/// `struct ifreq` as TUNSETIFF reads it: the name, then the flags.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

const _: () = assert!(std::mem::size_of::<IfReq>() == 40);

/// An open tun device (`IFF_TUN | IFF_NO_PI`). Closed, and so removed, on
/// drop.
#[derive(Debug)]
pub struct TunDevice {
    file: File,
    name: String,
}

impl TunDevice {
    /// Creates the tun device `name` (at most 15 bytes).
    pub fn create(name: &str) -> io::Result<TunDevice> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad interface name {name:?}"),
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")?;
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short,
            _pad: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF reads and writes a `struct ifreq`, which `req`
        // matches in layout and size (40 bytes) and which lives for the call.
        let r = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &raw mut req) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(TunDevice {
            file,
            name: name.to_string(),
        })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hands one IP packet to the kernel, received on the device.
    pub fn send(&self, packet: &[u8]) -> io::Result<()> {
        let n = (&self.file).write(packet)?;
        if n != packet.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("tun took {n} of {} bytes", packet.len()),
            ));
        }
        Ok(())
    }
}
