//! The only place with `unsafe`: system calls (`bpf(2)`, netlink,
//! interface names, directory-relative file calls, ring buffer memory,
//! `perf_event_open(2)`, ending signals taken as data; for the test harness, packet sockets and tun
//! devices) and the owned file descriptors they return.
//!
//! The workspace denies `unsafe_code`; this module alone allows it, so
//! `unsafe` anywhere else in the workspace fails the build.

#![allow(unsafe_code)]

pub mod bpf;
pub mod clock;
pub mod dir;
pub mod epoll;
pub(crate) mod mmap;
pub mod netlink;
pub mod netns;
pub mod perf;
pub mod perf_ring;
pub mod ringbuf;
pub mod signal;
// The test harness's raw sockets and tun devices: not part of the SDK's
// API, only built for `testbed` (feature `test-support`).
#[cfg(feature = "test-support")]
pub mod packet;
#[cfg(feature = "test-support")]
pub mod tun;
