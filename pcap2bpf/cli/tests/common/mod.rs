//! Helpers of the command's tests: those of the compiler's tests (one
//! copy, in `pcap2bpf/tests/common`), and the cleanup of attached filters.

#![allow(dead_code)]

#[path = "../../../tests/common/mod.rs"]
mod compiler;

// Not every test file uses the compiler's helpers.
#[allow(unused_imports)]
pub use compiler::*;

use std::path::Path;
use std::process::Output;

/// What a command wrote to its standard output.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What a command wrote to its standard error.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Removes a filter's pins (under `pcap2bpf attach`'s bpffs directory)
/// when a test ends, even a failing one.
pub struct PinCleanup(pub String);

impl Drop for PinCleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(Path::new(pcap2bpf_cli::deploy::PIN_ROOT).join(&self.0));
    }
}
