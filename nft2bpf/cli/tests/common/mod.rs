//! The test bed of the commands that load rulesets into the kernel: a
//! namespace with a veth pair, a pin root of its own, a directory for
//! ruleset files, and the command run in the namespace.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bpf_builder::attach::xdp;
use serde_json::Value;
use testbed::{Marker, Netns, VethPair};

/// The command.
pub const BIN: &str = env!("CARGO_BIN_EXE_nft2bpf");

/// A namespace with a veth pair (`nfa` sends, `nfb` runs the ruleset), a
/// pin root, and a directory for ruleset files.
pub struct Bed {
    pub ns: Netns,
    pub pair: VethPair,
    pub root: PathBuf,
    pub dir: PathBuf,
}

impl Bed {
    pub fn new(what: &str) -> Option<Bed> {
        if !testbed::privileged(what) || !testbed::bpf_privileged(what) {
            return None;
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        bpf_builder::sys::bpf::ensure_bpffs(Path::new("/sys/fs/bpf")).unwrap();
        let ns = Netns::new().unwrap();
        let pair = ns.veth_pair("nfa", "nfb").unwrap();
        let tag = format!("nft2bpf-test-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(&tag);
        std::fs::create_dir_all(&dir).unwrap();
        Some(Bed {
            ns,
            pair,
            root: PathBuf::from("/sys/fs/bpf").join(tag),
            dir,
        })
    }

    /// Writes a ruleset file.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args).current_dir(&self.dir);
        if !args.contains(&"--pin-root") {
            c.arg("--pin-root").arg(&self.root);
        }
        c
    }

    /// Runs nft2bpf in the namespace, with our pin root.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut c = self.cmd(args);
        self.ns.run(move || c.output().expect("runs")).unwrap()
    }

    /// Like [`cli`](Bed::cli), and it must succeed: its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "nft2bpf {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Like [`cli`](Bed::cli), and it must fail: its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(!out.status.success(), "nft2bpf {args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    }

    /// A UDP frame from `nfa` (10.0.0.1) to `nfb` (10.0.0.2) port `port`,
    /// carrying `marker`.
    pub fn frame(&self, port: u16, marker: &Marker) -> Vec<u8> {
        let (a, b) = (&self.pair.a, &self.pair.b);
        testbed::udp4_frame(
            a.mac,
            b.mac,
            [10, 0, 0, 1].into(),
            [10, 0, 0, 2].into(),
            1000,
            port,
            marker.as_bytes(),
        )
        .unwrap()
    }

    /// Sends UDP frames to these ports from `nfa` to `nfb`: the ports of
    /// those that arrived.
    pub fn send(&self, ports: &[u16]) -> Vec<u16> {
        let marker = Marker::new().unwrap();
        let (a, b) = (&self.pair.a, &self.pair.b);
        let frames: Vec<Vec<u8>> = ports.iter().map(|&p| self.frame(p, &marker)).collect();
        let got =
            testbed::send_and_collect(a, b, &frames, &marker, Duration::from_millis(600)).unwrap();
        got.iter()
            .map(|f| u16::from_be_bytes([f[36], f[37]]))
            .collect()
    }

    /// `list counters -j`: (chain, rule, text) -> packets; named
    /// counters as ("", name).
    pub fn counters(&self) -> Vec<(String, u64, String, u64)> {
        let v: Value = serde_json::from_str(&self.ok(&["list", "counters", "-j"])).unwrap();
        v["counters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["chain"].as_str().unwrap_or("").to_string(),
                    c["rule"].as_u64().unwrap_or(0),
                    c["text"]
                        .as_str()
                        .or(c["name"].as_str())
                        .unwrap()
                        .to_string(),
                    c["packets"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    /// Every path under the pin root, sorted.
    pub fn pins(&self) -> Vec<String> {
        fn walk(p: &Path, out: &mut Vec<String>) {
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd {
                    let e = e.unwrap();
                    out.push(e.path().display().to_string());
                    walk(&e.path(), out);
                }
            }
        }
        let mut v = Vec::new();
        walk(&self.root, &mut v);
        v.sort();
        v
    }

    /// The rules' program that runs on `key` (`xdp-nfb`), behind its
    /// generation switch.
    pub fn rules_prog(&self, key: &str) -> Option<u32> {
        nft2bpf::deploy::running(&self.root)
            .unwrap()
            .into_iter()
            .find(|r| r.key == key)?
            .prog_id
    }

    /// The XDP program attached to `dev` (ours is the ruleset's
    /// generation switch), if any.
    pub fn xdp_prog(&self, dev: &'static str) -> Option<u32> {
        self.ns
            .run(move || xdp::query(dev).unwrap())
            .unwrap()
            .program(xdp::XdpMode::Auto)
            .map(|p| p.get())
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
