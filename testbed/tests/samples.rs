//! The shipped sample captures are exactly what `samples.rs` generates, read
//! back unchanged, and read cleanly by tcpdump.

use std::path::{Path, PathBuf};
use std::process::Command;

use pcapfile as capture;
use testbed::samples;

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../pcap2bpf/samples")
        .join(name)
}

#[test]
fn shipped_samples_are_byte_identical_to_the_generator() {
    let caps = samples::sample_captures();
    let mut listed: Vec<String> = std::fs::read_dir(shipped(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    listed.sort();
    let mut names: Vec<String> = caps.iter().map(|(n, _)| n.to_string()).collect();
    names.sort();
    assert_eq!(listed, names, "samples/ holds exactly the generated files");
    for (name, cap) in &caps {
        let on_disk = std::fs::read(shipped(name)).unwrap();
        let generated = samples::file_bytes(cap).unwrap();
        assert!(
            on_disk == generated,
            "{name} differs from the generator: run `cargo run -p testbed --example gen-samples`"
        );
        assert_eq!(&capture::read(shipped(name)).unwrap(), cap, "{name}");
    }
}

#[test]
fn tcpdump_reads_every_shipped_sample() {
    for (name, cap) in samples::sample_captures() {
        let out = match Command::new("tcpdump")
            .arg("-r")
            .arg(shipped(name))
            .args(["-nn", "--count"])
            .output()
        {
            Ok(out) => out,
            Err(e) => {
                assert!(std::env::var_os("CI").is_none(), "tcpdump: {e} (CI is set)");
                eprintln!("skipping: tcpdump: {e}");
                return;
            }
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        let expected = format!("{} packets", cap.packets.len());
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.lines().chain(stderr.lines()).any(|l| l == expected),
            "{name}: expected {expected:?} in {stdout}{stderr}"
        );
    }
}
