//! Reading tcpdump's test captures (copied into `testdata/pcaps/`): packet
//! counts against the corpus README and against tcpdump itself, and a read
//! -> `write_pcap` -> tcpdump round trip that must print the same.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{testdata, testdata_text};
use pcapfile::{self as capture, PacketReader};

fn pcaps_dir() -> PathBuf {
    testdata("pcaps")
}

/// `file -> (packets, link type name)` from the README's table.
fn readme_table() -> BTreeMap<String, (usize, String)> {
    let text = testdata_text("pcaps/README.md");
    let mut table = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 5 || !cells[1].contains(".pcap") {
            continue;
        }
        let count = cells[2]
            .parse()
            .unwrap_or_else(|e| panic!("pcaps/README.md: {line:?}: {e}"));
        table.insert(cells[1].to_string(), (count, cells[3].to_string()));
    }
    table
}

fn tcpdump(args: &[&str]) -> Option<(String, String, bool)> {
    let out = Command::new("tcpdump").args(args).output().ok()?;
    Some((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    ))
}

/// tcpdump's own count of the packets in a file (`--count`).
fn tcpdump_count(path: &Path) -> Option<usize> {
    let (stdout, stderr, ok) = tcpdump(&["-r", path.to_str()?, "--count"])?;
    assert!(ok, "tcpdump failed on {}: {stderr}", path.display());
    let text = format!("{stdout}{stderr}");
    let line = text
        .lines()
        .find(|l| l.ends_with(" packets") || l.ends_with(" packet"))?;
    line.split_whitespace().next()?.parse().ok()
}

#[test]
fn tcpdump_captures_have_the_documented_packet_counts() {
    let table = readme_table();
    assert_eq!(table.len(), 47, "the README lists 47 files");
    let mut total = 0;
    for (file, (count, link)) in &table {
        let cap = capture::read(pcaps_dir().join(file)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cap.packets.len(), *count, "{file}");
        let expected_link = match link.as_str() {
            "EN10MB" => 1,
            "RAW" => 101,
            "LINUX_SLL" => 113,
            "NULL" => 0,
            "PPP" => 9,
            other => panic!("{file}: link type {other} not in this test"),
        };
        assert_eq!(cap.link, expected_link, "{file}");
        for (i, p) in cap.packets.iter().enumerate() {
            assert!(p.ts_nsec < 1_000_000_000, "{file} packet {i}");
        }
        total += cap.packets.len();
    }
    assert_eq!(total, 940, "the README's total");
}

#[test]
fn tcpdump_captures_count_like_tcpdump() {
    let table = readme_table();
    for file in table.keys() {
        let path = pcaps_dir().join(file);
        let Some(expected) = tcpdump_count(&path) else {
            return testbed::skip("tcpdump is not installed");
        };
        let mut streamed = 0;
        for packet in PacketReader::open(&path).unwrap() {
            packet.unwrap_or_else(|e| panic!("{e}"));
            streamed += 1;
        }
        assert_eq!(streamed, expected, "{file}");
    }
}

/// What we read, written back with our writer, prints the same in tcpdump
/// (timestamps, lengths, every decoded byte): reader and writer agree with
/// libpcap's reader on every packet.
#[test]
fn tcpdump_captures_survive_a_round_trip_through_write_pcap() {
    let table = readme_table();
    let dir = std::env::temp_dir().join(format!("pcap2bpf-roundtrip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in table.keys() {
        let path = pcaps_dir().join(file);
        let reader = PacketReader::open(&path).unwrap();
        let snaplen = reader.snaplen();
        let link = reader.link();
        let packets: Vec<_> = reader.map(|p| p.unwrap()).collect();
        let biggest = packets
            .iter()
            .map(|p| p.data.len() as u32)
            .max()
            .unwrap_or(0);
        let out = dir.join("copy.pcap");
        let f = std::fs::File::create(&out).unwrap();
        capture::write_pcap(f, link, snaplen.max(biggest).max(65535), &packets).unwrap();
        let args = ["-nn", "-tt", "-v", "-r"];
        let Some((original, _, ok1)) = tcpdump(&[&args[..], &[path.to_str().unwrap()]].concat())
        else {
            return testbed::skip("tcpdump is not installed");
        };
        let (copy, err, ok2) = tcpdump(&[&args[..], &[out.to_str().unwrap()]].concat()).unwrap();
        assert!(ok1 && ok2, "{file}: {err}");
        assert_eq!(copy, original, "{file}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every packet of tcpdump's captures and of the samples gets a one-line
/// summary without panicking; the first packet of print-flags.pcap reads as
/// tcpdump prints it, modulo the details we leave out.
#[test]
fn summaries_of_every_packet() {
    use pcap2bpf_cli::summary::summary;
    let mut captures: Vec<(String, capture::Capture)> = testbed::samples::sample_captures()
        .into_iter()
        .map(|(n, c)| (n.to_string(), c))
        .collect();
    for file in readme_table().keys() {
        captures.push((file.clone(), capture::read(pcaps_dir().join(file)).unwrap()));
    }
    for (name, cap) in &captures {
        let Some(link) = pcap2bpf::LinkType::from_linktype(cap.link) else {
            continue; // PPP: not a link type we compile for
        };
        for p in &cap.packets {
            let line = summary(link, p.borrowed());
            assert!(!line.contains('\n') && line.len() > 16, "{name}: {line:?}");
        }
    }
    let sample = &captures[0].1;
    assert_eq!(
        summary(pcap2bpf::LinkType::En10mb, sample.packets[0].borrowed()),
        "22:13:20.000000 IP 10.0.0.1.49152 > 10.0.0.2.80: Flags [S], seq 281018448, win 64240, length 0"
    );
}
