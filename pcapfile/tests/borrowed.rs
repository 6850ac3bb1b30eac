//! The packets `PacketReader::next_ref` lends from its buffer, on every
//! capture of `testdata/pcaps` and `pcap2bpf/samples`, and on each pcap
//! among them rewritten here in the other forms the reader parses
//! (swapped byte order, nanoseconds, pcapng with enhanced, simple and
//! obsolete packet blocks on two interfaces), read from the file and
//! through an input that gives a few bytes per `read` (records split
//! across refills of the buffer):
//! - equal the records as this test parses the original pcap itself;
//! - have the lengths and timestamps libpcap reads (`libpcap_read.c`);
//! - equal the owned packets of the iterator.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use pcapfile::{Packet, PacketReader};

/// A record as this test parses it: seconds, fraction (µs), bytes,
/// wire length.
type Rec = (u32, u32, Vec<u8>, u32);

fn captures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut all = Vec::new();
    for dir in ["testdata/pcaps", "pcap2bpf/samples"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            let name = p.to_string_lossy().into_owned();
            if name.ends_with(".pcap") || name.ends_with(".pcapng") {
                all.push(p);
            }
        }
    }
    all.sort();
    all
}

/// The records of a microsecond pcap in either byte order, parsed here
/// and cut to the file's snapshot length, as libpcap cuts them; `None`
/// for other files.
fn parse_pcap(f: &[u8]) -> Option<(bool, u32, Vec<Rec>)> {
    let be = match f.get(..4)? {
        [0xd4, 0xc3, 0xb2, 0xa1] => false,
        [0xa1, 0xb2, 0xc3, 0xd4] => true,
        _ => return None,
    };
    let u32_at = |at: usize| {
        let b: [u8; 4] = f[at..at + 4].try_into().unwrap();
        if be {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let link = u32_at(20);
    let snaplen = match u32_at(16) {
        0 => 262_144,
        s => s as usize,
    };
    let mut at = 24;
    let mut recs = Vec::new();
    while at + 16 <= f.len() {
        let caplen = u32_at(at + 8) as usize;
        let data = f.get(at + 16..at + 16 + caplen.min(snaplen))?.to_vec();
        recs.push((u32_at(at), u32_at(at + 4), data, u32_at(at + 12)));
        at += 16 + caplen;
    }
    Some((be, link, recs))
}

/// `recs` as a pcap: byte order, nanoseconds.
fn write_pcap(link: u32, recs: &[Rec], be: bool, nanos: bool) -> Vec<u8> {
    let w = |f: &mut Vec<u8>, v: u32| {
        f.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() })
    };
    let mut f = Vec::new();
    w(&mut f, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
    let version = if be { [0, 2, 0, 4] } else { [2, 0, 4, 0] };
    f.extend_from_slice(&version);
    f.extend_from_slice(&[0; 8]);
    w(&mut f, 262_144);
    w(&mut f, link);
    for (sec, usec, data, wire) in recs {
        w(&mut f, *sec);
        w(&mut f, if nanos { usec * 1000 } else { *usec });
        w(&mut f, data.len() as u32);
        w(&mut f, *wire);
        f.extend_from_slice(data);
    }
    f
}

fn block(f: &mut Vec<u8>, kind: u32, body: &[u8]) {
    let mut body = body.to_vec();
    while !body.len().is_multiple_of(4) {
        body.push(0);
    }
    let total = 12 + body.len() as u32;
    for v in [kind, total] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    f.extend_from_slice(&body);
    f.extend_from_slice(&total.to_le_bytes());
}

/// `recs` as a little-endian pcapng: two interfaces (the second in
/// nanoseconds) where libpcap allows them, packets in enhanced blocks alternating between them,
/// every fifth as an obsolete packet block; with `simple`, all in simple
/// packet blocks (no timestamps) when none is cut.
fn write_pcapng(link: u32, recs: &[Rec], simple: bool) -> Vec<u8> {
    let mut f = Vec::new();
    let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&u64::MAX.to_le_bytes());
    block(&mut f, 0x0a0d_0d0a, &shb);
    let idb = |f: &mut Vec<u8>, opts: &[u8]| {
        let mut b = (link as u16).to_le_bytes().to_vec();
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&262_144u32.to_le_bytes());
        b.extend_from_slice(opts);
        block(f, 1, &b);
    };
    // libpcap 1.10.3 refuses a second interface of a link type whose DLT
    // value differs (RAW): one interface then.
    let ifaces = if link == 101 { 1 } else { 2 };
    idb(&mut f, &[]);
    if ifaces == 2 {
        idb(&mut f, &[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
    }
    for (i, (sec, usec, data, wire)) in recs.iter().enumerate() {
        if simple {
            let mut b = wire.to_le_bytes().to_vec();
            b.extend_from_slice(data);
            block(&mut f, 3, &b);
            continue;
        }
        let iface = (i % ifaces) as u32;
        let ticks = if iface == 0 {
            u64::from(*sec) * 1_000_000 + u64::from(*usec)
        } else {
            u64::from(*sec) * 1_000_000_000 + u64::from(*usec) * 1000
        };
        let mut b = if i % 5 == 4 {
            let mut b = (iface as u16).to_le_bytes().to_vec();
            b.extend_from_slice(&[0, 0]);
            b
        } else {
            iface.to_le_bytes().to_vec()
        };
        for v in [(ticks >> 32) as u32, ticks as u32, data.len() as u32, *wire] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(data);
        block(&mut f, if i % 5 == 4 { 2 } else { 6 }, &b);
    }
    f
}

/// An input that gives at most `step` bytes per read.
struct Trickle<'a> {
    bytes: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

/// The lent packets, copied, and how the reading ended.
fn lent(mut reader: PacketReader<'_>) -> (Vec<Packet>, Option<String>) {
    let mut out = Vec::new();
    while let Some(p) = reader.next_ref() {
        match p {
            Ok(p) => out.push(p.to_packet()),
            Err(e) => return (out, Some(e.to_string())),
        }
    }
    (out, None)
}

/// `(caplen, len, seconds, nanoseconds)` of each packet libpcap reads.
fn libpcap(helper: &Path, file: &Path) -> Vec<(u32, u32, u64, u32)> {
    let out = Command::new(helper).arg(file).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut v = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f[0] {
            "packet" => v.push((
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
            )),
            "end" => return v,
            other => panic!("{}: libpcap says {other}: {line}", file.display()),
        }
    }
    panic!("{}: the helper's output ended early", file.display())
}

#[test]
fn lent_packets_are_the_files_records() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("borrowed");
    std::fs::create_dir_all(&dir).unwrap();
    let helper = dir.join("libpcap_read");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/libpcap_read.c");
    let helper = testbed::build_with_libpcap(&src, &helper).then_some(helper);
    if helper.is_none() {
        testbed::skip("cannot build tests/libpcap_read.c with `cc -lpcap`: libpcap not compared");
    }
    let (mut files, mut packets) = (0, 0);
    for path in captures() {
        let original = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut forms: Vec<(String, Vec<u8>)> = vec![(name.clone(), original.clone())];
        let parsed = parse_pcap(&original);
        if let Some((be, link, recs)) = &parsed {
            forms.push((
                format!("{name}.swapped"),
                write_pcap(*link, recs, !be, false),
            ));
            forms.push((format!("{name}.nanos"), write_pcap(*link, recs, *be, true)));
            forms.push((format!("{name}.pcapng"), write_pcapng(*link, recs, false)));
            if recs.iter().all(|r| r.2.len() == r.3 as usize) {
                forms.push((
                    format!("{name}.spb.pcapng"),
                    write_pcapng(*link, recs, true),
                ));
            }
        }
        let (owned, _) = {
            let mut r = PacketReader::new(&original[..], &name).unwrap();
            let owned: Vec<Packet> = r.by_ref().collect::<Result<_, _>>().unwrap();
            (owned, r.warnings())
        };
        for (form, bytes) in &forms {
            let file = dir.join(form);
            std::fs::write(&file, bytes).unwrap();
            let from_file = lent(PacketReader::open(&file).unwrap());
            assert_eq!(from_file.1, None, "{form}");
            let spb = form.ends_with(".spb.pcapng");
            for step in [3, 4093] {
                let input = Trickle { bytes, step };
                let trickled = lent(PacketReader::new(input, form.as_str()).unwrap());
                assert_eq!(trickled, from_file, "{form}, {step} bytes a read");
            }
            let got = &from_file.0;
            // The records as parsed here (timestamps but for simple
            // packet blocks, which have none).
            if let Some((_, _, recs)) = &parsed {
                assert_eq!(got.len(), recs.len(), "{form}");
                for (i, (p, r)) in got.iter().zip(recs).enumerate() {
                    assert_eq!((&p.data, p.wire_len), (&r.2, r.3), "{form} #{}", i + 1);
                    if !spb {
                        let ts = (p.ts_sec, p.ts_nsec);
                        assert_eq!(ts, (u64::from(r.0), r.1 * 1000), "{form} #{}", i + 1);
                    }
                }
            }
            // libpcap's lengths and timestamps.
            if let Some(helper) = &helper {
                let theirs = libpcap(helper, &file);
                let ours: Vec<_> = got
                    .iter()
                    .map(|p| (p.data.len() as u32, p.wire_len, p.ts_sec, p.ts_nsec))
                    .collect();
                assert_eq!(ours, theirs, "{form}: ours vs libpcap");
            }
            // The owned packets of the original file.
            if !spb {
                assert_eq!(got, &owned, "{form}: lent vs owned");
            }
            files += 1;
            packets += got.len();
        }
    }
    assert!(
        files > 100 && packets > 1000,
        "{files} files, {packets} packets"
    );
    println!("{files} files, {packets} packets");
}
