//! Differential test of the capture reader against libpcap 1.10.3: every
//! case is a capture file built here, faulty or odd in one way; the
//! oracle is libpcap itself (`tests/libpcap_read.c`, built with
//! `cc -lpcap`, reads each file with `pcap_open_offline` and
//! `pcap_next_ex`), cross-checked with `tcpdump -r`. We must refuse exactly
//! the files libpcap refuses, at the same point (at open, or after the same
//! packets), read the same packets from the others, and say what is wrong
//! with our own message, which each case names.

use std::path::{Path, PathBuf};
use std::process::Command;

use pcapfile::PacketReader;

// ---- pcap ----

fn pcap_header(magic: u32, major: u16, minor: u16, snaplen: u32, link: u32) -> Vec<u8> {
    let mut f = magic.to_le_bytes().to_vec();
    f.extend_from_slice(&major.to_le_bytes());
    f.extend_from_slice(&minor.to_le_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&snaplen.to_le_bytes());
    f.extend_from_slice(&link.to_le_bytes());
    f
}

fn pcap(major: u16, minor: u16, snaplen: u32) -> Vec<u8> {
    pcap_header(0xa1b2_c3d4, major, minor, snaplen, 1)
}

/// A record: the two length fields as written, then `data`.
fn rec(f: &mut Vec<u8>, ts: u32, caplen_field: u32, len_field: u32, data: &[u8]) {
    for w in [ts, 5, caplen_field, len_field] {
        f.extend_from_slice(&w.to_le_bytes());
    }
    f.extend_from_slice(data);
}

fn with(mut f: Vec<u8>, build: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    build(&mut f);
    f
}

// ---- pcapng (little-endian unless said) ----

fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let total = 12 + body.len() as u32;
    let mut b = kind.to_le_bytes().to_vec();
    b.extend_from_slice(&total.to_le_bytes());
    b.extend_from_slice(body);
    b.extend_from_slice(&total.to_le_bytes());
    b
}

fn shb_version(major: u16, minor: u16) -> Vec<u8> {
    let mut body = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    body.extend_from_slice(&major.to_le_bytes());
    body.extend_from_slice(&minor.to_le_bytes());
    body.extend_from_slice(&u64::MAX.to_le_bytes());
    block(0x0a0d_0d0a, &body)
}

fn shb() -> Vec<u8> {
    shb_version(1, 0)
}

fn opt(code: u16, value: &[u8]) -> Vec<u8> {
    let mut o = code.to_le_bytes().to_vec();
    o.extend_from_slice(&(value.len() as u16).to_le_bytes());
    o.extend_from_slice(value);
    while !o.len().is_multiple_of(4) {
        o.push(0);
    }
    o
}

fn idb_opts(link: u16, snaplen: u32, opts: &[u8]) -> Vec<u8> {
    let mut body = link.to_le_bytes().to_vec();
    body.extend_from_slice(&[0, 0]);
    body.extend_from_slice(&snaplen.to_le_bytes());
    body.extend_from_slice(opts);
    block(1, &body)
}

fn idb(snaplen: u32) -> Vec<u8> {
    idb_opts(1, snaplen, &[])
}

fn padded(data: &[u8]) -> Vec<u8> {
    let mut d = data.to_vec();
    while !d.len().is_multiple_of(4) {
        d.push(0);
    }
    d
}

/// An enhanced packet block; `data` is padded, `opts` follow it.
fn epb_full(if_id: u32, ticks: u64, caplen: u32, len: u32, data: &[u8], opts: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for w in [if_id, (ticks >> 32) as u32, ticks as u32, caplen, len] {
        body.extend_from_slice(&w.to_le_bytes());
    }
    body.extend_from_slice(&padded(data));
    body.extend_from_slice(opts);
    block(6, &body)
}

fn epb(if_id: u32, data: &[u8]) -> Vec<u8> {
    epb_full(if_id, 1_500_000, data.len() as u32, 60, data, &[])
}

fn spb(len: u32, data: &[u8]) -> Vec<u8> {
    let mut body = len.to_le_bytes().to_vec();
    body.extend_from_slice(&padded(data));
    block(3, &body)
}

/// An obsolete packet block (type 2).
fn pb(if_id: u16, data: &[u8]) -> Vec<u8> {
    let mut body = if_id.to_le_bytes().to_vec();
    body.extend_from_slice(&[0, 0]);
    for w in [0u32, 7_000_000, data.len() as u32, 64] {
        body.extend_from_slice(&w.to_le_bytes());
    }
    body.extend_from_slice(&padded(data));
    block(2, &body)
}

fn ng(blocks: &[Vec<u8>]) -> Vec<u8> {
    blocks.concat()
}

/// A big-endian block: the header and trailer in that order; `body` is
/// written as given.
fn be_block(kind: u32, body: &[u8]) -> Vec<u8> {
    let total = 12 + body.len() as u32;
    let mut b = kind.to_be_bytes().to_vec();
    b.extend_from_slice(&total.to_be_bytes());
    b.extend_from_slice(body);
    b.extend_from_slice(&total.to_be_bytes());
    b
}

fn be_shb() -> Vec<u8> {
    let mut body = 0x1a2b_3c4du32.to_be_bytes().to_vec();
    body.extend_from_slice(&[0, 1, 0, 0]);
    body.extend_from_slice(&u64::MAX.to_be_bytes());
    be_block(0x0a0d_0d0a, &body)
}

/// One case: the bytes, and what we say: `Some(text)` is in our error
/// message (libpcap must refuse the file too), `None` means libpcap and we
/// read it; `warning` is in one of our warnings.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    error: Option<&'static str>,
    warning: Option<&'static str>,
}

fn refused(name: &'static str, bytes: Vec<u8>, error: &'static str) -> Case {
    Case {
        name,
        bytes,
        error: Some(error),
        warning: None,
    }
}

fn read_ok(name: &'static str, bytes: Vec<u8>) -> Case {
    Case {
        name,
        bytes,
        error: None,
        warning: None,
    }
}

fn read_warned(name: &'static str, bytes: Vec<u8>, warning: &'static str) -> Case {
    Case {
        name,
        bytes,
        error: None,
        warning: Some(warning),
    }
}

fn cases() -> Vec<Case> {
    let two = |f: &mut Vec<u8>| {
        rec(f, 1, 4, 60, &[1, 2, 3, 4]);
        rec(f, 2, 2, 2, &[5, 6]);
    };
    let first = |f: &mut Vec<u8>| rec(f, 1, 4, 60, &[1, 2, 3, 4]);
    let big = vec![0xab; 300_000];
    vec![
        // pcap: file header.
        read_ok("pcap-good", with(pcap(2, 4, 65535), two)),
        read_ok("pcap-empty", pcap(2, 4, 65535)),
        refused(
            "pcap-empty-file",
            vec![],
            "0 bytes is too short for a capture file header",
        ),
        refused(
            "pcap-3-bytes",
            vec![0xd4, 0xc3, 0xb2],
            "3 bytes is too short",
        ),
        refused(
            "pcap-unknown-magic",
            b"GIF89a and more bytes".to_vec(),
            "not a pcap or pcapng file (magic number 0x47494638)",
        ),
        refused(
            "pcap-short-header",
            pcap(2, 4, 65535)[..10].to_vec(),
            "bad pcap file header: truncated file; tried to read 24 file header bytes, only got 10",
        ),
        refused(
            "pcap-version-9.9",
            with(pcap(9, 9, 65535), two),
            "unsupported pcap savefile version 9.9",
        ),
        refused(
            "pcap-version-1.0",
            with(pcap(1, 0, 65535), two),
            "archaic pcap savefile format (version 1.0)",
        ),
        refused(
            "pcap-version-2.5",
            with(pcap(2, 5, 65535), two),
            "unsupported pcap savefile version 2.5",
        ),
        refused(
            "pcap-version-3.0",
            with(pcap(3, 0, 65535), two),
            "unsupported pcap savefile version 3.0",
        ),
        refused(
            "pcap-version-543.1",
            with(pcap(543, 1, 65535), two),
            "unsupported pcap savefile version 543.1",
        ),
        // Before 2.3, and DG/UX's 543.0, len came before caplen.
        read_ok(
            "pcap-version-2.2",
            with(pcap(2, 2, 65535), |f| rec(f, 1, 60, 4, &[1, 2, 3, 4])),
        ),
        read_ok(
            "pcap-version-543.0",
            with(pcap(543, 0, 65535), |f| rec(f, 1, 60, 4, &[1, 2, 3, 4])),
        ),
        // 2.3: either order, the smaller is the captured length.
        read_ok(
            "pcap-version-2.3",
            with(pcap(2, 3, 65535), |f| {
                rec(f, 1, 60, 4, &[1, 2, 3, 4]);
                rec(f, 2, 2, 9, &[5, 6]);
            }),
        ),
        read_ok(
            "pcap-version-2.0",
            with(pcap(2, 0, 65535), |f| rec(f, 1, 9, 2, &[1, 2])),
        ),
        read_ok("pcap-big-endian-nanos", {
            let mut f = vec![
                0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0,
                0, 1,
            ];
            f.extend_from_slice(&[
                0, 0, 0, 7, 0x3b, 0x9a, 0xc9, 0xff, 0, 0, 0, 2, 0, 0, 0, 20, 0x45, 0,
            ]);
            f
        }),
        read_ok(
            "pcap-kuznetzov",
            with(pcap_header(0xa1b2_cd34, 2, 4, 100, 1), |f| {
                for w in [1u32, 5, 4, 60, 1, 0x0800_0000] {
                    f.extend_from_slice(&w.to_le_bytes());
                }
                f.extend_from_slice(&[1, 2, 3, 4]);
            }),
        ),
        read_ok(
            "pcap-unknown-link-type",
            with(pcap_header(0xa1b2_c3d4, 2, 4, 65535, 4242), two),
        ),
        read_ok(
            "pcap-link-type-fcs-bits",
            with(pcap_header(0xa1b2_c3d4, 2, 4, 65535, 0x1400_0001), two),
        ),
        // Snapshot lengths.
        read_ok(
            "pcap-snaplen-0",
            with(pcap(2, 4, 0), |f| rec(f, 1, 70_000, 70_000, &big[..70_000])),
        ),
        read_ok(
            "pcap-snaplen-above-max",
            with(pcap(2, 4, 400_000), |f| {
                rec(f, 1, 200_000, 200_000, &big[..200_000])
            }),
        ),
        read_warned(
            "pcap-caplen-above-snaplen",
            with(pcap(2, 4, 4), |f| {
                rec(f, 1, 6, 60, &[1, 2, 3, 4, 5, 6]);
                rec(f, 2, 2, 2, &[7, 8]);
                rec(f, 3, 5, 5, &[1, 2, 3, 4, 5]);
                rec(f, 4, 5, 5, &[1, 2, 3, 4, 5]);
            }),
            "captured length 6 is bigger than the snapshot length 4; cut to it",
        ),
        read_ok(
            "pcap-usbpcap-large-caplen",
            with(pcap_header(0xa1b2_c3d4, 2, 4, 0, 249), |f| {
                rec(f, 1, 300_000, 300_000, &big)
            }),
        ),
        // Oversized caplen: one message, libpcap's.
        refused(
            "pcap-caplen-above-maximum",
            with(pcap(2, 4, 65535), |f| {
                first(f);
                rec(f, 2, 300_000, 300_000, &big);
            }),
            "invalid packet capture length 300000, bigger than snaplen of 65535",
        ),
        refused(
            "pcap-caplen-above-maximum-snaplen-0",
            with(pcap(2, 4, 0), |f| {
                first(f);
                rec(f, 2, 300_000, 300_000, &big);
            }),
            "invalid packet capture length 300000, bigger than snaplen of 262144",
        ),
        refused(
            "pcap-caplen-above-maximum-below-snaplen",
            with(pcap(2, 4, 400_000), |f| {
                first(f);
                rec(f, 2, 300_000, 300_000, &big);
            }),
            "invalid packet capture length 300000, bigger than maximum of 262144",
        ),
        refused(
            "pcap-caplen-huge",
            with(pcap(2, 4, 100), |f| {
                first(f);
                rec(f, 2, 0x7fff_ffff, 0x7fff_ffff, &[0; 100]);
            }),
            "invalid packet capture length 2147483647, bigger than snaplen of 100",
        ),
        // Truncation.
        refused(
            "pcap-truncated-record-header",
            with(pcap(2, 4, 65535), |f| {
                first(f);
                f.extend_from_slice(&[1, 2, 3]);
            }),
            "truncated file; tried to read 16 header bytes, only got 3",
        ),
        refused(
            "pcap-truncated-data",
            with(pcap(2, 4, 65535), |f| {
                first(f);
                rec(f, 2, 20, 20, &[9; 15]);
            }),
            "truncated file; tried to read 20 captured bytes, only got 15",
        ),
        refused(
            "pcap-truncated-above-snaplen",
            with(pcap(2, 4, 4), |f| rec(f, 1, 10, 10, &[1; 6])),
            "truncated file; tried to read 10 captured bytes, only got 6",
        ),
        refused(
            "pcap-truncated-within-snaplen",
            with(pcap(2, 4, 8), |f| rec(f, 1, 10, 10, &[1; 6])),
            "truncated file; tried to read 8 captured bytes, only got 6",
        ),
        // pcapng: the first section header.
        read_ok(
            "ng-good",
            ng(&[
                shb(),
                idb(0),
                epb(0, &[1, 2, 3]),
                spb(5, &[1, 2, 3, 4, 5]),
                pb(0, &[9, 8]),
                epb(0, &[]),
            ]),
        ),
        read_ok("ng-big-endian", {
            let mut idb_body = vec![0, 1, 0, 0, 0, 0, 0xff, 0xff];
            idb_body.extend_from_slice(&[0, 9, 0, 1, 9, 0, 0, 0]);
            let mut epb_body = Vec::new();
            for w in [0u32, 0, 3_500_000_000, 2, 60] {
                epb_body.extend_from_slice(&w.to_be_bytes());
            }
            epb_body.extend_from_slice(&[1, 2, 0, 0]);
            [be_shb(), be_block(1, &idb_body), be_block(6, &epb_body)].concat()
        }),
        read_ok(
            "ng-version-1.2",
            ng(&[shb_version(1, 2), idb(0), epb(0, &[1])]),
        ),
        refused(
            "ng-version-1.1",
            ng(&[shb_version(1, 1), idb(0), epb(0, &[1])]),
            "unsupported pcapng savefile version 1.1",
        ),
        refused(
            "ng-version-2.0",
            ng(&[shb_version(2, 0), idb(0), epb(0, &[1])]),
            "unsupported pcapng savefile version 2.0",
        ),
        refused(
            "ng-no-byte-order-magic",
            with(shb(), |f| f[8] = 0x99),
            "not a pcap or pcapng file",
        ),
        refused(
            "ng-shb-too-short-for-magic",
            shb()[..6].to_vec(),
            "not a pcap or pcapng file",
        ),
        refused(
            "ng-shb-length-24",
            with(ng(&[shb(), idb(0)]), |f| f[4] = 24),
            "Section Header Block in pcapng dump file has invalid length 24",
        ),
        refused(
            "ng-shb-length-2MiB",
            with(ng(&[shb(), idb(0)]), |f| {
                f[4..8].copy_from_slice(&(2u32 << 20).to_le_bytes())
            }),
            "Section Header Block in pcapng dump file has invalid length 2097152",
        ),
        refused(
            "ng-shb-truncated",
            shb()[..20].to_vec(),
            "truncated file; tried to read 16 bytes of a pcapng block, only got 8",
        ),
        // libpcap checks neither the trailer nor the alignment of the first block.
        read_warned(
            "ng-shb-trailer-mismatch",
            with(ng(&[shb(), idb(0), epb(0, &[1])]), |f| f[24] = 32),
            "header and trailer don't match",
        ),
        read_warned(
            "ng-shb-length-not-multiple-of-4",
            {
                let mut s = shb();
                s.splice(24..24, [0, 0]);
                s[4] = 30;
                s[26] = 30;
                ng(&[s, idb(0), epb(0, &[1])])
            },
            "length of 30 that is not a multiple of 4",
        ),
        // Up to the first interface description.
        refused(
            "ng-no-idb",
            ng(&[shb()]),
            "the capture file has no Interface Description Blocks",
        ),
        refused(
            "ng-epb-before-idb",
            ng(&[shb(), epb(0, &[1]), idb(0)]),
            "the capture file has a packet block before any Interface Description Blocks",
        ),
        refused(
            "ng-spb-before-idb",
            ng(&[shb(), spb(1, &[1]), idb(0)]),
            "the capture file has a packet block before any Interface Description Blocks",
        ),
        read_ok(
            "ng-unknown-block-before-idb",
            ng(&[shb(), block(0x0bad, &[1, 2, 3, 4]), idb(0), epb(0, &[1])]),
        ),
        read_ok(
            "ng-second-shb-before-idb",
            ng(&[shb(), shb_version(1, 1), idb(0), epb(0, &[1])]),
        ),
        // Block framing.
        refused(
            "ng-block-length-8",
            ng(&[
                shb(),
                idb(0),
                6u32.to_le_bytes().to_vec(),
                8u32.to_le_bytes().to_vec(),
            ]),
            "block in pcapng dump file has a length of 8 < 12",
        ),
        refused(
            "ng-block-length-not-multiple-of-4",
            with(ng(&[shb(), idb(0), epb(0, &[1])]), |f| f[52] = 35),
            "block in pcapng dump file has a length of 35 that is not a multiple of 4",
        ),
        refused(
            "ng-block-too-large",
            ng(&[
                shb(),
                idb(0),
                epb(0, &[1]),
                6u32.to_le_bytes().to_vec(),
                (20u32 << 20).to_le_bytes().to_vec(),
            ]),
            "pcapng block size 20971520 > maximum 16777216",
        ),
        refused(
            "ng-block-trailer-mismatch",
            with(ng(&[shb(), idb(0), epb(0, &[1]), epb(0, &[2])]), |f| {
                let n = f.len();
                f[n - 4] = 40;
            }),
            "block total length in header (36) and trailer (40) don't match",
        ),
        refused(
            "ng-block-truncated",
            with(ng(&[shb(), idb(0), epb(0, &[1]), epb(0, &[2])]), |f| {
                f.truncate(f.len() - 6)
            }),
            "truncated file; tried to read 28 bytes of a pcapng block, only got 22",
        ),
        refused(
            "ng-block-header-truncated",
            with(ng(&[shb(), idb(0), epb(0, &[1])]), |f| {
                f.extend_from_slice(&[6, 0, 0])
            }),
            "truncated file; tried to read 8 bytes of a pcapng block header, only got 3",
        ),
        // Interface descriptions and their options.
        refused(
            "ng-idb-too-short",
            ng(&[shb(), block(1, &[1, 0, 0, 0]), epb(0, &[1])]),
            "block of type 1 (interface description) in pcapng dump file is too short: its fixed fields run past its end",
        ),
        refused(
            "ng-idb-option-past-block",
            ng(&[
                shb(),
                idb_opts(1, 0, &[2, 0, 40, 0, b'e', b't', b'h', b'0']),
                epb(0, &[1]),
            ]),
            "block of type 1 (interface description) in pcapng dump file is too short: option 2 of length 40 runs past its end",
        ),
        refused(
            "ng-idb-option-value-cut",
            // An option header that fills the block: if_tsresol of length 1
            // with no room left for its value.
            ng(&[shb(), idb_opts(1, 0, &[9, 0, 1, 0]), epb(0, &[1])]),
            "block of type 1 (interface description) in pcapng dump file is too short: option 9 of length 1 runs past its end",
        ),
        refused(
            "ng-idb-endofopt-length",
            ng(&[shb(), idb_opts(1, 0, &opt(0, &[1, 2, 3, 4])), epb(0, &[1])]),
            "Interface Description Block has opt_endofopt option with length 4 != 0",
        ),
        read_ok(
            "ng-idb-endofopt-then-garbage",
            ng(&[
                shb(),
                idb_opts(1, 0, &[opt(0, &[]), vec![9, 0, 0x40, 0]].concat()),
                epb(0, &[1]),
            ]),
        ),
        refused(
            "ng-idb-tsresol-length",
            ng(&[shb(), idb_opts(1, 0, &opt(9, &[6, 6])), epb(0, &[1])]),
            "Interface Description Block has if_tsresol option with length 2 != 1",
        ),
        refused(
            "ng-idb-tsresol-twice",
            ng(&[
                shb(),
                idb_opts(1, 0, &[opt(9, &[6]), opt(9, &[6])].concat()),
                epb(0, &[1]),
            ]),
            "Interface Description Block has more than one if_tsresol option",
        ),
        refused(
            "ng-idb-tsresol-10^-20",
            ng(&[shb(), idb_opts(1, 0, &opt(9, &[20])), epb(0, &[1])]),
            "Interface Description Block if_tsresol option resolution 10^-20 is too high",
        ),
        refused(
            "ng-idb-tsresol-2^-64",
            ng(&[shb(), idb_opts(1, 0, &opt(9, &[0xc0])), epb(0, &[1])]),
            "Interface Description Block if_tsresol option resolution 2^-64 is too high",
        ),
        read_ok(
            "ng-idb-tsresol-nanos",
            ng(&[
                shb(),
                idb_opts(1, 0, &opt(9, &[9])),
                epb_full(0, 2_500_000_001, 1, 1, &[1], &[]),
            ]),
        ),
        read_ok(
            "ng-idb-tsresol-2^-10",
            ng(&[
                shb(),
                idb_opts(1, 0, &opt(9, &[0x8a])),
                epb_full(0, 2560, 1, 1, &[1], &[]),
            ]),
        ),
        read_ok(
            "ng-idb-tsoffset",
            ng(&[
                shb(),
                idb_opts(1, 0, &opt(14, &100u64.to_le_bytes())),
                epb(0, &[1]),
            ]),
        ),
        refused(
            "ng-idb-tsoffset-length",
            ng(&[shb(), idb_opts(1, 0, &opt(14, &[1, 2, 3, 4])), epb(0, &[1])]),
            "Interface Description Block has if_tsoffset option with length 4 != 8",
        ),
        refused(
            "ng-idb-tsoffset-twice",
            ng(&[
                shb(),
                idb_opts(1, 0, &[opt(14, &[0; 8]), opt(14, &[0; 8])].concat()),
                epb(0, &[1]),
            ]),
            "Interface Description Block has more than one if_tsoffset option",
        ),
        refused(
            "ng-second-idb-option-past-block",
            ng(&[
                shb(),
                idb(0),
                epb(0, &[1]),
                idb_opts(1, 0, &[2, 0, 40, 0]),
                epb(1, &[2]),
            ]),
            "option 2 of length 40 runs past its end",
        ),
        read_ok(
            "ng-two-interfaces",
            ng(&[shb(), idb(100), idb(100), epb(1, &[1]), epb(0, &[2])]),
        ),
        refused(
            "ng-mixed-link-types",
            ng(&[
                shb(),
                idb(0),
                epb(0, &[1]),
                idb_opts(113, 0, &[]),
                epb(1, &[2]),
            ]),
            "interface 1 has link type LINKTYPE 113 (LINUX_SLL), but the first interface has LINKTYPE 1 (EN10MB)",
        ),
        refused(
            "ng-mixed-snaplen",
            ng(&[shb(), idb(100), epb(0, &[1]), idb(200), epb(1, &[2])]),
            "interface 1 has a snapshot length 200 different from the snapshot length 100 of the first interface",
        ),
        read_ok(
            "ng-snaplen-0-and-max",
            ng(&[shb(), idb(0), idb(0x8000_0000), epb(1, &[2])]),
        ),
        // libpcap compares a later interface's LINKTYPE with the first's
        // DLT: where those differ (RAW is DLT 12 on Linux), two interfaces
        // of the same type are refused.
        refused(
            "ng-two-raw-interfaces",
            ng(&[
                shb(),
                idb_opts(101, 0, &[]),
                epb(0, &[0x45]),
                idb_opts(101, 0, &[]),
                epb(1, &[0x45]),
            ]),
            "an interface has a type 101 different from the type of the first interface",
        ),
        read_ok(
            "ng-two-sll2-interfaces",
            ng(&[
                shb(),
                idb_opts(276, 0, &[]),
                idb_opts(276, 0, &[]),
                epb(1, &[0; 20]),
            ]),
        ),
        read_ok(
            "ng-unknown-link-type",
            ng(&[shb(), idb_opts(4242, 0, &[]), epb(0, &[1])]),
        ),
        // Packets.
        refused(
            "ng-epb-unknown-interface",
            ng(&[shb(), idb(0), epb(0, &[1]), epb(1, &[2])]),
            "a packet arrived on interface 1, but there's no Interface Description Block for that interface",
        ),
        refused(
            "ng-epb-above-snaplen",
            ng(&[shb(), idb(4), epb(0, &[1, 2]), epb(0, &[1, 2, 3, 4, 5, 6])]),
            "invalid packet capture length 6, bigger than snaplen of 4",
        ),
        refused(
            "ng-epb-above-maximum",
            ng(&[shb(), idb(0), epb(0, &[1, 2]), epb(0, &big)]),
            "invalid packet capture length 300000, bigger than snaplen of 262144",
        ),
        read_ok(
            "ng-epb-above-maximum-below-snaplen",
            ng(&[shb(), idb(400_000), epb(0, &big)]),
        ),
        refused(
            "ng-epb-caplen-past-block",
            ng(&[
                shb(),
                idb(0),
                epb(0, &[1]),
                epb_full(0, 0, 100, 100, &[1; 8], &[]),
            ]),
            "block of type 6 (enhanced packet) in pcapng dump file is too short: its packet data (capture length 100) runs past its end (8 bytes)",
        ),
        refused(
            "ng-epb-too-short",
            ng(&[shb(), idb(0), epb(0, &[1]), block(6, &[0; 12])]),
            "block of type 6 (enhanced packet) in pcapng dump file is too short: its fixed fields run past its end",
        ),
        // libpcap reads packet data into the options, and never looks at them.
        read_ok(
            "ng-epb-caplen-into-options",
            ng(&[
                shb(),
                idb(0),
                epb_full(0, 0, 10, 10, &[1; 8], &opt(1, b"ab")),
            ]),
        ),
        read_ok(
            "ng-epb-option-past-block",
            ng(&[
                shb(),
                idb(0),
                epb_full(0, 0, 2, 2, &[1, 2], &[1, 0, 0x40, 0]),
            ]),
        ),
        read_ok(
            "ng-spb-cut-to-snaplen",
            ng(&[shb(), idb(4), spb(10, &[1; 10])]),
        ),
        refused(
            "ng-spb-past-block",
            ng(&[shb(), idb(0), spb(10, &[1; 4])]),
            "block of type 3 (simple packet) in pcapng dump file is too short: its packet data (capture length 10) runs past its end (4 bytes)",
        ),
        refused(
            "ng-pb-unknown-interface",
            ng(&[shb(), idb(0), pb(3, &[1])]),
            "a packet arrived on interface 3",
        ),
        // Later sections.
        read_ok(
            "ng-two-sections",
            ng(&[
                shb(),
                idb(0),
                epb(0, &[1]),
                shb_version(1, 5),
                idb(0),
                epb(0, &[2]),
            ]),
        ),
        refused(
            "ng-second-section-without-idb",
            ng(&[shb(), idb(0), epb(0, &[1]), shb(), epb(0, &[2])]),
            "a packet arrived on interface 0, but there's no Interface Description Block",
        ),
        refused(
            "ng-second-section-major-2",
            ng(&[
                shb(),
                idb(0),
                epb(0, &[1]),
                shb_version(2, 0),
                idb(0),
                epb(0, &[2]),
            ]),
            "unknown pcapng savefile major version number 2",
        ),
        refused(
            "ng-second-section-other-byte-order",
            with(
                ng(&[shb(), idb(0), epb(0, &[1]), shb(), idb(0), epb(0, &[2])]),
                |f| {
                    f[92..96].copy_from_slice(&0x1a2b_3c4du32.to_be_bytes());
                },
            ),
            "the file has sections with different byte orders",
        ),
        refused(
            "ng-second-section-bad-magic",
            with(
                ng(&[shb(), idb(0), epb(0, &[1]), shb(), idb(0), epb(0, &[2])]),
                |f| f[92] = 0,
            ),
            "the file has a section with a bad byte order magic field",
        ),
        refused(
            "ng-second-section-too-short",
            ng(&[
                shb(),
                idb(0),
                epb(0, &[1]),
                block(0x0a0d_0d0a, &0x1a2b_3c4du32.to_le_bytes()),
                epb(0, &[2]),
            ]),
            "block of type 168627466 (section header) in pcapng dump file is too short",
        ),
    ]
}

/// What a reader made of a file.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Refused at open.
    OpenError,
    /// These packets (caplen, len, seconds, nanoseconds), then the end
    /// (`false`) or an error (`true`).
    Read(Vec<(u32, u32, i64, u32)>, bool),
}

fn libpcap(helper: &Path, file: &Path) -> (Outcome, String) {
    let out = Command::new(helper)
        .arg(file)
        .output()
        .expect("run the libpcap helper");
    assert!(
        out.status.success(),
        "libpcap helper failed on {}",
        file.display()
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut packets = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f[0] {
            "open-error" => return (Outcome::OpenError, f[1].to_string()),
            "packet" => packets.push((
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
            )),
            "end" => return (Outcome::Read(packets, false), String::new()),
            "error" => return (Outcome::Read(packets, true), f[1].to_string()),
            other => panic!("unexpected helper output {other:?}"),
        }
    }
    panic!("helper output ended early: {text}")
}

fn ours(file: &Path) -> (Outcome, Option<String>, Vec<String>) {
    let mut reader = match PacketReader::open(file) {
        Ok(r) => r,
        Err(e) => return (Outcome::OpenError, Some(e.to_string()), Vec::new()),
    };
    let mut packets = Vec::new();
    let mut error = None;
    for item in &mut reader {
        match item {
            Ok(p) => packets.push((p.data.len() as u32, p.wire_len, p.ts_sec as i64, p.ts_nsec)),
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    let warnings = reader.warnings();
    (Outcome::Read(packets, error.is_some()), error, warnings)
}

/// Builds `tests/libpcap_read.c` against the system libpcap.
fn build_helper() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("libpcap-faults");
    std::fs::create_dir_all(&dir).ok()?;
    let bin = dir.join("libpcap_read");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/libpcap_read.c");
    testbed::build_with_libpcap(&src, &bin).then_some(bin)
}

/// Whether `tcpdump -r FILE` fails (it reads with the same libpcap; `-w`
/// so that it needs no printer for the link type); `None` without tcpdump.
/// tcpdump also compiles its (empty) filter, and libpcap's filter compiler,
/// not its file reader, refuses link types it does not know: that failure
/// is not counted as refusing the file.
fn tcpdump_fails(file: &Path) -> Option<bool> {
    let out = Command::new("tcpdump")
        .arg("-r")
        .arg(file)
        .arg("-w")
        .arg("/dev/null")
        .output()
        .ok()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    Some(!out.status.success() && !stderr.contains("tcpdump: unknown data link type"))
}

#[test]
fn we_refuse_exactly_what_libpcap_refuses() {
    let Some(helper) = build_helper() else {
        testbed::skip(
            "cannot build tests/libpcap_read.c with `cc -lpcap` (.ci/setup installs libpcap-dev)",
        );
        return;
    };
    if tcpdump_fails(Path::new("/dev/null")).is_none() {
        testbed::skip("tcpdump is not installed (.ci/setup installs it)");
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("libpcap-faults");
    let mut failures = Vec::new();
    let cases = cases();
    for case in &cases {
        let file = dir.join(format!("{}.cap", case.name));
        std::fs::write(&file, &case.bytes).unwrap();
        let (theirs, their_msg) = libpcap(&helper, &file);
        let (mine, my_msg, warnings) = ours(&file);
        let libpcap_refuses = !matches!(theirs, Outcome::Read(_, false));
        let mut problems = Vec::new();
        if theirs != mine {
            problems.push(format!(
                "libpcap: {theirs:?} ({their_msg}); we: {mine:?} ({my_msg:?})"
            ));
        }
        if tcpdump_fails(&file) != Some(libpcap_refuses) {
            problems.push(format!(
                "tcpdump -r disagrees with the helper (helper refuses: {libpcap_refuses})"
            ));
        }
        match (case.error, &my_msg) {
            (Some(want), Some(got)) => {
                let prefix = format!("{}: ", file.display());
                if !got.starts_with(&prefix) || !got.contains(want) {
                    problems.push(format!(
                        "our message {got:?} lacks {want:?} (libpcap: {their_msg})"
                    ));
                }
            }
            (None, None) => {}
            (want, got) => problems.push(format!(
                "case expects error {want:?}, we said {got:?} (libpcap: {their_msg})"
            )),
        }
        match case.warning {
            Some(w) if !warnings.iter().any(|m| m.contains(w)) => {
                problems.push(format!("no warning with {w:?}: {warnings:?}"))
            }
            None if !warnings.is_empty() => {
                problems.push(format!("unexpected warnings {warnings:?}"))
            }
            _ => {}
        }
        if !problems.is_empty() {
            failures.push(format!("{}:\n  {}", case.name, problems.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
