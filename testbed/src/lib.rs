//! Network test harness: throw-away network namespaces with veth pairs,
//! raw frames sent and received through `AF_PACKET` sockets, and
//! throw-away unprivileged users ([`User`]) to run commands as.
//!
//! For firewall tests: [`NftBed`] asks the real nftables what its netdev
//! ingress hook does with each of a list of frames (see [`nft`]), and
//! [`firewall_frames`] makes a corpus of frames to ask about.
//!
//! For XDP dispatcher tests: [`xdp_tools::XdpTools`] runs Debian's
//! `xdp-loader` (libxdp's multi-program dispatcher) on an interface of a
//! test namespace and parses what it lists.
//!
//! For kernel features the host lacks: [`vm`] boots another kernel under
//! qemu and runs a test there ([`vm::run_here_or_in_vm`]).
//!
//! Everything lives in namespaces this crate creates (named
//! `tb-<pid>-<counter>-<random>`); the host's own interfaces are never
//! touched. Dropping a [`Netns`] deletes it and with it every veth inside,
//! also when a test panics. Namespaces and veths are made with the `ip`
//! command (iproute2). `setns` goes through rustix's safe wrapper; packet
//! sockets and tun devices are `bpf-builder`'s, built for the harness
//! only (its feature `test-support`), since no safe wrapper binds a
//! packet socket to one interface or creates a tun device.
//!
//! ```no_run
//! # fn main() -> testbed::Result<()> {
//! use std::time::Duration;
//! let ns = testbed::Netns::new()?;
//! let pair = ns.veth_pair("va", "vb")?;
//! let marker = testbed::Marker::new()?;
//! let frame = testbed::udp4_frame(
//!     pair.a.mac, pair.b.mac,
//!     [10, 0, 0, 1].into(), [10, 0, 0, 2].into(),
//!     1000, 2000, marker.as_bytes(),
//! )?;
//! let got = testbed::send_and_collect(&pair.a, &pair.b, &[&frame], &marker, Duration::from_secs(2))?;
//! assert_eq!(got, vec![frame]);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod cmd;
pub use cmd::build_with_libpcap;
mod corpus;
pub use corpus::{PORTS as CORPUS_PORTS, V4 as CORPUS_V4, V6 as CORPUS_V6, firewall_frames};
pub mod features;
pub mod frame;
mod link;
mod netns;
pub mod nft;
mod privilege;
mod random;
pub use random::Rng;
pub mod samples;
mod traffic;
mod user;
pub mod vm;
pub mod xdp_tools;

pub use bpf_builder::sys::packet::PacketSocket;
pub use bpf_builder::sys::tun::TunDevice;
pub use frame::{ETHERTYPE_IPV4, ethernet_frame, internet_checksum, udp4_checksum, udp4_frame};
pub use link::{Link, VethPair};
pub use netns::{Netns, sweep_stale};
pub use nft::{NftBed, Outcome};
pub use privilege::{bpf_privileged, privileged, skip};
pub use traffic::{Marker, send_and_collect, stream_and_collect};
pub use user::{User, sweep_stale_users};

/// What went wrong while setting up or using the test network.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An `ip` (or other) command exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// How it exited.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A command's output was not what we expected.
    #[error("cannot understand the output of `{command}`: {detail}")]
    Parse {
        /// The command line.
        command: String,
        /// What was wrong.
        detail: String,
    },
    /// The nft oracle ([`NftBed`]) saw traffic it cannot account for: a
    /// sentinel lost or out of order, a frame changed or seen twice, a
    /// socket or the CPU's backlog dropping frames. No verdict is guessed.
    #[error("the nft oracle cannot account for its traffic: {0}")]
    Unexplained(String),
    /// An argument was out of range (interface name too long, payload too
    /// big for a UDP datagram, ...).
    #[error("invalid argument: {0}")]
    Invalid(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
