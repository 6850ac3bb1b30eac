//! The only place with `unsafe`: system calls (`bpf(2)`, netlink,
//! interface names) and the owned file descriptors they return.
//!
//! The workspace denies `unsafe_code`; this module alone allows it, so
//! `unsafe` anywhere else in the workspace fails the build.

#![allow(unsafe_code)]

pub mod bpf;
pub mod netlink;
pub mod netns;
