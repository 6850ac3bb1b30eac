//! Helpers of the ruleset tests: read a ruleset file, check it, compare
//! what comes out with the `.expected` file beside it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use nft2bpf::syntax::FsLoader;
use nft2bpf::{Errors, SourceMap, check};

/// `tests/rulesets/DIR`.
pub fn rulesets(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/rulesets")
        .join(dir)
}

/// The `.nft` files of a directory, sorted.
pub fn nft_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "nft"))
        .collect();
    files.sort();
    files
}

/// A ruleset file parsed and checked, with the map of its files. Files
/// are named relative to the package (`tests/rulesets/...`), the working
/// directory of tests, so that errors in `.expected` files do not depend
/// on where the repository is.
pub fn check_file(path: &Path) -> (SourceMap, Result<check::Ruleset, Errors>) {
    let name = path
        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path);
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut map = SourceMap::new();
    let file = map.add(name.display().to_string(), Some(name), text, None);
    let result = nft2bpf::check_ruleset(&mut map, file, &mut FsLoader);
    (map, result)
}

/// Compares `actual` with `path`'s `.expected` file; with
/// `UPDATE_EXPECTED=1` in the environment, writes it instead (review the
/// diff before committing). Returns a description of a difference.
pub fn compare_expected(path: &Path, actual: &str) -> Option<String> {
    let expected_path = path.with_extension("expected");
    if std::env::var_os("UPDATE_EXPECTED").is_some() {
        std::fs::write(&expected_path, actual).unwrap();
        return None;
    }
    match std::fs::read_to_string(&expected_path) {
        Ok(expected) if expected == actual => None,
        Ok(expected) => Some(format!(
            "{}: output differs\n--- expected\n{expected}--- actual\n{actual}",
            path.display()
        )),
        Err(_) => Some(format!(
            "{}: no .expected file; the output is\n{actual}",
            path.display()
        )),
    }
}

/// The first line of a ruleset: `# nft: rejects` or `# nft: accepts...`,
/// what nft 1.0.6 does with it.
pub fn nft_verdict(path: &Path) -> NftVerdict {
    let text = std::fs::read_to_string(path).unwrap();
    let first = text.lines().next().unwrap_or("");
    match first.strip_prefix("# nft: ") {
        Some(rest) if rest.starts_with("rejects") => NftVerdict::Rejects,
        Some(rest) if rest.starts_with("accepts") => NftVerdict::Accepts,
        _ => panic!(
            "{}: the first line must be `# nft: rejects` or `# nft: accepts...`",
            path.display()
        ),
    }
}

/// What nft does with a ruleset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NftVerdict {
    /// `nft -f` loads it.
    Accepts,
    /// `nft -f` refuses it.
    Rejects,
}

/// The match list of the differential tests (`tests/rulesets/diff/
/// matches.txt`), without comments and blank lines.
pub fn diff_matches() -> Vec<String> {
    let text =
        std::fs::read_to_string(rulesets("diff").join("matches.txt")).expect("the match list");
    text.lines()
        .map(str::trim)
        .filter(|m| !m.is_empty() && !m.starts_with('#'))
        .map(String::from)
        .collect()
}

/// A ruleset checked, lowered for a hook of one device, built, loaded in
/// the kernel, and its maps' first contents written (no `fwd` targets:
/// see [`Compiled::initialize`]).
pub struct Compiled {
    pub ruleset: check::Ruleset,
    pub lowered: nft2bpf::compile::Lowered,
    pub program: nft2bpf::compile::program::Program,
    pub loaded: bpf_builder::load::Loaded,
}

/// What a counter of ours is, as nft's counters name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counted {
    /// A rule's own counter: its chain, and its position there.
    Rule { chain: String, position: usize },
    /// A named counter.
    Named(String),
}

impl Counted {
    /// nft's value of the same counter; `skip` rules our chains have
    /// before nft's (a first rule a test adds).
    pub fn in_nft(&self, theirs: &testbed::nft::Counters, skip: usize) -> Option<(u64, u64)> {
        match self {
            Counted::Rule { chain, position } => theirs.rule(chain, position.checked_sub(skip)?),
            Counted::Named(name) => theirs.named(name),
        }
    }
}

impl Compiled {
    /// `text` (one file) for `attach` on `device`, built in `mode`.
    pub fn new(
        text: &str,
        attach: nft2bpf::compile::Attach,
        device: &nft2bpf::compile::Device,
        mode: nft2bpf::compile::program::Mode,
    ) -> Compiled {
        Compiled::lowered_with(text, attach, device, mode, Default::default())
    }

    /// [`Compiled::new`], lowered with `options` (classifiers or not).
    pub fn lowered_with(
        text: &str,
        attach: nft2bpf::compile::Attach,
        device: &nft2bpf::compile::Device,
        mode: nft2bpf::compile::program::Mode,
        options: nft2bpf::compile::LowerOptions,
    ) -> Compiled {
        use nft2bpf::compile::program::{ProgramOptions, build};
        let mut map = SourceMap::new();
        let file = map.add("test.nft", None, text, None);
        let ruleset =
            nft2bpf::check_ruleset(&mut map, file, &mut nft2bpf::syntax::MemLoader::new())
                .unwrap_or_else(|e| panic!("{}", e.render(&map)));
        let lowered = nft2bpf::compile::lower_with(&ruleset, attach, device, options)
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(lowered.ir.verify(), Ok(()), "{text}\n{}", lowered.ir);
        let program =
            build(&lowered, &ProgramOptions::new(mode)).unwrap_or_else(|e| panic!("{text}: {e}"));
        let loaded = program
            .object
            .load()
            .unwrap_or_else(|e| panic!("{}\n{e}", lowered.ir));
        let c = Compiled {
            ruleset,
            lowered,
            program,
            loaded,
        };
        c.initialize(&|_| None);
        c
    }

    /// Writes the maps' first contents, `fwd` targets by `ifindex`.
    pub fn initialize(&self, ifindex: &dyn Fn(&str) -> Option<u32>) {
        self.program
            .initialize(&self.loaded, &self.lowered, &self.ruleset, ifindex)
            .expect("the maps' first contents");
    }

    /// The program the hook runs.
    pub fn prog(&self) -> &bpf_builder::handle::Program {
        self.loaded.program(self.program.prog)
    }

    /// The decision of a test run of `frame` (built in the test-run mode);
    /// `None` for a frame the hook never sees (decision 0).
    pub fn decide(&self, frame: &[u8]) -> Option<&nft2bpf::compile::Decision> {
        let out = self
            .prog()
            .test_run(&bpf_builder::run::TestRun::new(frame))
            .expect("a test run");
        match out.retval {
            0 => None,
            n => Some(&self.lowered.decisions[n as usize]),
        }
    }

    /// Every counter of ours: what it is, packets and bytes.
    pub fn counters(&self) -> Vec<(Counted, (u64, u64))> {
        use nft2bpf::compile::CounterSlot;
        let Some(map) = self.program.maps.counters else {
            return Vec::new();
        };
        let map = self.loaded.map(map);
        let rs = &self.ruleset;
        let mut out = Vec::new();
        for (slot, c) in self.lowered.slots.counters.iter().enumerate() {
            let v = nft2bpf::compile::actions::read_counter(map, slot as u32).expect("a counter");
            let what = match *c {
                CounterSlot::Rule { rule, .. } => {
                    let chain = &rs.chains[rs.rules[rule].chain];
                    let position = chain
                        .rules
                        .iter()
                        .position(|&r| r == rule)
                        .expect("its rule");
                    Counted::Rule {
                        chain: chain.name.clone(),
                        position,
                    }
                }
                CounterSlot::Named(n) => Counted::Named(rs.counters[n].name.clone()),
            };
            out.push((what, (v.packets, v.bytes)));
        }
        out
    }

    /// A line for each of our counters that differs from nft's.
    pub fn counter_diffs(
        &self,
        theirs: &testbed::nft::Counters,
        skip: usize,
        what: &str,
    ) -> Vec<String> {
        self.counters()
            .into_iter()
            .filter_map(|(c, ours)| {
                let nft = c.in_nft(theirs, skip);
                (nft != Some(ours)).then(|| format!("{what}: {c:?}: nft {nft:?}, nft2bpf {ours:?}"))
            })
            .collect()
    }
}

/// A ruleset of one chain on `veth0`'s ingress with these rules.
pub fn chain<S: AsRef<str>>(rules: &[S], policy: &str) -> String {
    let mut text = format!(
        "table netdev t {{\n\tchain c {{\n\t\ttype filter hook ingress device \"veth0\" priority 0; policy {policy};\n"
    );
    for r in rules {
        text.push_str(&format!("\t\t{}\n", r.as_ref()));
    }
    text.push_str("\t}\n}\n");
    text
}

/// Fails with the differences (the first 40 of them), if any.
pub fn assert_none(diffs: Vec<String>) {
    let shown: Vec<&str> = diffs.iter().take(40).map(String::as_str).collect();
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        shown.join("\n")
    );
}

/// A frame's bytes in hexadecimal, the first 80.
pub fn hex(frame: &[u8]) -> String {
    bpf_builder::text::hex_bytes(&frame[..frame.len().min(80)])
}

/// The corpus's IPv4 addresses (`testbed::firewall_frames` sends them),
/// and two it never sends.
pub fn v4() -> Vec<String> {
    let corpus = testbed::CORPUS_V4
        .iter()
        .map(|a| std::net::Ipv4Addr::from(*a).to_string());
    corpus
        .chain(["172.31.0.1".into(), "100.64.0.9".into()])
        .collect()
}

/// The corpus's IPv6 addresses, and one it never sends.
pub fn v6() -> Vec<String> {
    let corpus = testbed::CORPUS_V6.iter().map(|a| a.to_string());
    corpus.chain(["2001:db8:77::77".into()]).collect()
}

/// The corpus's ports, and one it never sends.
pub fn ports() -> Vec<u16> {
    testbed::CORPUS_PORTS
        .iter()
        .copied()
        .chain([31337])
        .collect()
}

/// The prefix of `len` bits of the IPv4 address `a`, as nft writes it.
pub fn v4_prefix(a: &str, len: u32) -> String {
    let addr: std::net::Ipv4Addr = a.parse().expect("an IPv4 address");
    let bits = u32::from(addr) & u32::MAX.checked_shl(32 - len).unwrap_or(0);
    format!("{}/{len}", std::net::Ipv4Addr::from(bits))
}

/// The prefix of `len` bits of the IPv6 address `a`, as nft writes it.
pub fn v6_prefix(a: &str, len: u32) -> String {
    let addr: std::net::Ipv6Addr = a.parse().expect("an IPv6 address");
    let bits = u128::from(addr) & u128::MAX.checked_shl(128 - len).unwrap_or(0);
    format!("{}/{len}", std::net::Ipv6Addr::from(bits))
}

/// Frames cut inside an address: for each IPv4 address of `v4`, a UDP
/// frame from it cut after none to all of its source address's bytes;
/// for each IPv6 address of `v6`, a frame to it cut after none to all
/// of its destination address's bytes (nft reads only a byte prefix's
/// bytes: such frames may match it).
pub fn cut_address_frames(v4: &[&str], v6: &[&str]) -> Vec<Vec<u8>> {
    let mac = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let mut frames = Vec::new();
    for src in v4 {
        let src = src.parse().expect("an IPv4 address");
        let ip = testbed::frame::Ipv4::new(src, "192.0.2.1".parse().unwrap(), 17);
        let f = testbed::frame::ethernet_frame(mac.0, mac.1, 0x0800, &ip.build(&[0; 8]));
        // The source address is bytes 26..30.
        frames.extend((26..=30).map(|end| f[..end].to_vec()));
    }
    for dst in v6 {
        let dst = dst.parse().expect("an IPv6 address");
        let ip = testbed::frame::ipv6("2001:db8::99".parse().unwrap(), dst, 59, 64, &[0; 8]);
        let f = testbed::frame::ethernet_frame(mac.0, mac.1, 0x86dd, &ip);
        // The destination address is bytes 38..54.
        frames.extend((38..=54).map(|end| f[..end].to_vec()));
    }
    frames
}

/// The corpus's frames for `seed` and [`cut_address_frames`] of four of
/// its IPv4 and IPv6 addresses (those [`prefix_runs`] tests first).
pub fn frames_with_cut_addresses(seed: u64) -> Vec<Vec<u8>> {
    let (v4, v6) = (v4(), v6());
    let v4: Vec<&str> = v4.iter().map(String::as_str).take(4).collect();
    let v6: Vec<&str> = v6.iter().map(String::as_str).take(4).collect();
    let mut frames = testbed::firewall_frames(seed);
    frames.extend(cut_address_frames(&v4, &v6));
    frames
}

/// About `n` rules in runs for the classifiers' tries (one field a
/// prefix or range, the others equalities) of varying length, with the
/// corpus's addresses and ports: each address's prefixes of several
/// lengths, nested, a shorter one before a longer one and after it;
/// overlapping port ranges; single values among them; mixed verdicts;
/// IPv4 and IPv6; exact fields before and after the ranged one; ranges
/// of fields shifted in their word (`ip dscp`, `ip6 dscp`); rules of
/// other shapes between the runs. A chain's rules for [`chain`].
pub fn prefix_runs(n: usize) -> Vec<String> {
    let (v4, v6, ports) = (v4(), v6(), ports());
    let mut rules = Vec::new();
    let mut k = 0usize;
    while rules.len() < n {
        // Run lengths of 1 to 250: some too short to fold.
        let len = 1 + (k * 53) % 250;
        for j in 0..len {
            let i = k * 1000 + j;
            // Each address three times in a row, with lengths in an
            // order that puts shorter ones first and later.
            let a4 = &v4[(j / 3 + k) % v4.len()];
            let a6 = &v6[(j / 3 + k) % v6.len()];
            let l4 = [8, 24, 16, 32, 12, 28, 20][(j + k) % 7];
            let l6 = [32, 64, 48, 128, 16, 56, 100][(j + k) % 7];
            let p = u32::from(ports[(j / 2 + k) % ports.len()]);
            // Ranges about the port: around it, up to it, from it, it.
            let range = match (j + k) % 4 {
                0 => format!("{}-{}", p.saturating_sub(100), (p + 100).min(65535)),
                1 => format!("0-{p}"),
                2 => format!("{p}-65535"),
                _ => format!("{p}"),
            };
            let verdict = if (i + k).is_multiple_of(3) {
                "drop"
            } else {
                "accept"
            };
            let q = ports[i % ports.len()];
            // Fields shifted in their word: IPv4's and IPv6's DSCP.
            let dscp = (i % 64, (i % 64 + j % 9).min(63));
            rules.push(match k % 8 {
                0 => format!("ip saddr {} counter {verdict}", v4_prefix(a4, l4)),
                1 => format!("ip6 daddr {} counter {verdict}", v6_prefix(a6, l6)),
                2 => format!("tcp dport {range} counter {verdict}"),
                3 => format!("ip daddr {a4} udp dport {range} counter {verdict}"),
                4 => format!("tcp sport {q} ip saddr {} {verdict}", v4_prefix(a4, l4)),
                5 => format!("udp sport {range} ip6 saddr {a6} counter {verdict}"),
                6 => format!(
                    "ip protocol tcp ip dscp {}-{} counter {verdict}",
                    dscp.0, dscp.1
                ),
                _ => format!("ip6 dscp {}-{} counter {verdict}", dscp.0, dscp.1),
            });
        }
        // Between runs: rules of other shapes that mostly go on.
        rules.push(format!("ip daddr 10.{}.0.0/16 counter", k % 256));
        k += 1;
    }
    rules
}

/// About `n` rules in runs of one shape (the classifiers' input) of
/// varying length, with the corpus's addresses and ports so that frames
/// hit them, duplicate keys with other verdicts, and rules of other
/// shapes between the runs: a chain's rules for [`chain`].
pub fn runs_of_shapes(n: usize) -> Vec<String> {
    let (v4, v6, ports) = (v4(), v6(), ports());
    let mut rules = Vec::new();
    let mut k = 0usize;
    while rules.len() < n {
        // Run lengths of 1 to 300: some too short to fold.
        let len = 1 + (k * 37) % 300;
        for j in 0..len {
            let i = k * 1000 + j;
            let a = &v4[(i / ports.len() + k) % v4.len()];
            let p = ports[i % ports.len()];
            let verdict = if (i + k).is_multiple_of(3) {
                "drop"
            } else {
                "accept"
            };
            rules.push(match k % 8 {
                0 => format!("ip saddr {a} tcp dport {p} counter {verdict}"),
                1 => format!("ip daddr {a} counter {verdict}"),
                2 => format!("udp dport {p} {verdict}"),
                3 => format!("ip6 saddr {} counter {verdict}", v6[i % v6.len()]),
                4 => format!(
                    "ip dscp {} ip protocol {} counter {verdict}",
                    i % 64,
                    [6, 17, 1][i % 3]
                ),
                5 => format!("vlan id {} counter {verdict}", 1 + i % 40),
                6 => format!(
                    "ip saddr {a} ip daddr {} counter {verdict}",
                    v4[i % v4.len()]
                ),
                _ => format!(
                    "tcp sport {p} tcp flags == {} counter {verdict}",
                    ["syn", "ack", "0x12"][i % 3]
                ),
            });
        }
        // Between runs: rules of other shapes that mostly go on.
        rules.push(format!("ip saddr 10.{}.0.0/16 counter", k % 256));
        if k % 5 == 4 {
            rules.push(format!(
                "tcp dport {{ {}, {} }} counter",
                7000 + k,
                7001 + k
            ));
        }
        k += 1;
    }
    rules
}
