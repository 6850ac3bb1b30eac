//! The only place with `unsafe`: system calls (`bpf(2)`, sockets, netns)
//! and the owned file descriptors they return.

pub mod bpf;
pub mod netlink;
pub mod netns;
pub mod packet;
pub mod tun;
