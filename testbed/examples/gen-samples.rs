//! Regenerates the sample captures shipped in `pcap2bpf/samples/`
//! (`cargo run -p testbed --example gen-samples [DIR]`).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pcap2bpf/samples"));
    match testbed::samples::write_samples(&dir) {
        Ok(()) => {
            println!("wrote the sample captures to {}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen-samples: {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}
