//! The library half of the `pcap2bpf` command: what the command does
//! besides compiling, kept apart from the compiler so that library users
//! get neither clap nor capture files with it. [`deploy`] attaches filters
//! and pins them, [`emit`] writes compiled filters in the output formats,
//! [`summary`] prints packets as tcpdump does.

#![warn(missing_docs)]

pub mod deploy;
pub mod emit;
pub mod summary;
