//! A tun device (`/dev/net/tun`, IP packets without an Ethernet header)
//! that tests write packets into: the kernel receives each one on the
//! device as if from a wire, so XDP and tc ingress programs see them.
//!
//! The device is created in the network namespace of the calling thread
//! (see [`crate::Netns::run`]) and disappears when the value is dropped.

use std::fmt;
use std::io;

use tun_rs::{DeviceBuilder, Layer, SyncDevice};

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
const MAX_NAME_LEN: usize = 15;

/// An open tun device (`IFF_TUN | IFF_NO_PI`), left down. Closed, and so
/// removed, on drop.
pub struct TunDevice {
    device: SyncDevice,
    name: String,
}

impl TunDevice {
    /// Creates the tun device `name` (at most 15 bytes).
    pub fn create(name: &str) -> io::Result<TunDevice> {
        if name.is_empty() || name.len() > MAX_NAME_LEN || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad interface name {name:?}"),
            ));
        }
        let device = DeviceBuilder::new()
            .name(name)
            .layer(Layer::L3)
            .packet_information(false)
            .enable(false)
            .build_sync()?;
        Ok(TunDevice {
            device,
            name: name.to_string(),
        })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hands one IP packet to the kernel, received on the device.
    pub fn send(&self, packet: &[u8]) -> io::Result<()> {
        let n = self.device.send(packet)?;
        if n != packet.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("tun took {n} of {} bytes", packet.len()),
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for TunDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TunDevice")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
