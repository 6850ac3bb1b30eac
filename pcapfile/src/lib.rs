//! pcapfile: capture files for the filter tools. Reading pcap and pcapng
//! with libpcap's (1.10.3) rules: what `pcap_open_offline` and
//! `pcap_next_ex` refuse is refused here, with libpcap's reason, and what
//! they read is read the same way; writing microsecond pcap; the
//! LINKTYPE_* values of the link types the compilers handle.
//!
//! Reading streams: [`PacketReader`] reads any `Read` through one large
//! buffer that records are parsed in place from.
//! [`PacketReader::next_ref`] lends each packet's bytes from that buffer
//! (no copy, no allocation per packet); as an [`Iterator`] it yields
//! owned [`Packet`]s. [`read`] and [`read_from`] collect a whole
//! [`Capture`].

mod source;

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use source::Source;

/// LINKTYPE_NULL: BSD loopback, host-order address family.
pub const LINKTYPE_NULL: u32 = 0;
/// LINKTYPE_ETHERNET (DLT_EN10MB).
pub const LINKTYPE_EN10MB: u32 = 1;
/// LINKTYPE_RAW: raw IPv4/IPv6 (what pcap files use for DLT_RAW).
pub const LINKTYPE_RAW: u32 = 101;
/// LINKTYPE_LOOP: OpenBSD loopback, network-order address family.
pub const LINKTYPE_LOOP: u32 = 108;
/// LINKTYPE_LINUX_SLL: Linux cooked capture v1.
pub const LINKTYPE_LINUX_SLL: u32 = 113;
/// LINKTYPE_LINUX_SLL2: Linux cooked capture v2.
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

/// libpcap's MAXIMUM_SNAPLEN: the largest snapshot length, and the most
/// captured bytes a record may have, for all but a few link types (see
/// [`max_snaplen_for_link`]).
const MAXIMUM_SNAPLEN: u32 = 262_144;
/// libpcap's largest section header block (BT_SHB_INSANE_MAX).
const SHB_INSANE_MAX: u32 = 1 << 20;
/// libpcap's initial largest pcapng block (INITIAL_MAX_BLOCKSIZE).
const INITIAL_MAX_BLOCKSIZE: u32 = 16 << 20;
/// The pcap magic numbers: microseconds, nanoseconds, and Alexey
/// Kuznetzov's patched format (24-byte record headers).
const TCPDUMP_MAGIC: u32 = 0xa1b2_c3d4;
const NSEC_TCPDUMP_MAGIC: u32 = 0xa1b2_3c4d;
const KUZNETZOV_TCPDUMP_MAGIC: u32 = 0xa1b2_cd34;
/// pcapng block types libpcap reads.
const BT_SHB: u32 = 0x0a0d_0d0a;
const BT_IDB: u32 = 1;
const BT_PB: u32 = 2;
const BT_SPB: u32 = 3;
const BT_EPB: u32 = 6;
/// The pcapng byte-order magic.
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

/// A short name for a LINKTYPE_* value, for messages (`"LINKTYPE 9 (PPP)"`).
pub fn linktype_name(value: u32) -> String {
    let name = match value {
        0 => "NULL",
        1 => "EN10MB",
        9 => "PPP",
        12 | 14 | 101 => "RAW",
        50 => "PPP_HDLC",
        105 => "IEEE802_11",
        108 => "LOOP",
        113 => "LINUX_SLL",
        127 => "IEEE802_11_RADIOTAP",
        228 => "IPV4",
        229 => "IPV6",
        276 => "LINUX_SLL2",
        _ => return format!("LINKTYPE {value}"),
    };
    format!("LINKTYPE {value} ({name})")
}

/// One captured packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Timestamp, seconds since the Unix epoch (UTC).
    pub ts_sec: u64,
    /// Timestamp, nanoseconds within the second.
    pub ts_nsec: u32,
    /// The captured bytes (caplen of them).
    pub data: Vec<u8>,
    /// The packet's length on the wire (what `len` means in a filter).
    pub wire_len: u32,
}

impl Packet {
    /// The packet as [`PacketReader::next_ref`] lends one.
    pub fn borrowed(&self) -> PacketRef<'_> {
        PacketRef {
            ts_sec: self.ts_sec,
            ts_nsec: self.ts_nsec,
            data: &self.data,
            wire_len: self.wire_len,
        }
    }
}

/// One captured packet whose bytes are borrowed (from the reader's
/// buffer, or from a [`Packet`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketRef<'a> {
    /// Timestamp, seconds since the Unix epoch (UTC).
    pub ts_sec: u64,
    /// Timestamp, nanoseconds within the second.
    pub ts_nsec: u32,
    /// The captured bytes (caplen of them).
    pub data: &'a [u8],
    /// The packet's length on the wire (what `len` means in a filter).
    pub wire_len: u32,
}

impl PacketRef<'_> {
    /// An owned copy.
    pub fn to_packet(&self) -> Packet {
        Packet {
            ts_sec: self.ts_sec,
            ts_nsec: self.ts_nsec,
            data: self.data.to_vec(),
            wire_len: self.wire_len,
        }
    }
}

/// A record found in the reader's buffer: its packet's bytes are
/// `start..start + len` there, until the next read.
struct Record {
    ts_sec: u64,
    ts_nsec: u32,
    start: usize,
    len: usize,
    wire_len: u32,
}

/// A whole capture file in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// The LINKTYPE_* value of every packet (mixed pcapng files are refused).
    pub link: u32,
    /// The packets, in file order.
    pub packets: Vec<Packet>,
}

/// What can go wrong reading a capture. Messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened or read.
    #[error("{file}: {source}")]
    Io {
        /// The file (or `<input>`).
        file: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The bytes are not a valid pcap/pcapng file.
    #[error("{file}: {message}")]
    Format {
        /// The file (or `<input>`).
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A pcapng file whose interfaces have different link types.
    #[error(
        "{file}: interface {interface} has link type {other}, but the first interface has {first}; captures with mixed link types are not supported"
    )]
    MixedLinkTypes {
        /// The file.
        file: String,
        /// The first interface's link type.
        first: String,
        /// The offending interface's link type.
        other: String,
        /// The offending interface's index.
        interface: usize,
    },
}

/// Reads a whole pcap or pcapng file.
pub fn read(path: impl AsRef<Path>) -> Result<Capture, CaptureError> {
    collect(PacketReader::open(path)?)
}

/// Reads a whole pcap or pcapng stream (errors name it `<input>`).
pub fn read_from<'a>(input: impl Read + 'a) -> Result<Capture, CaptureError> {
    collect(PacketReader::new(input, "<input>")?)
}

fn collect(reader: PacketReader<'_>) -> Result<Capture, CaptureError> {
    let link = reader.link();
    let packets = reader.collect::<Result<Vec<_>, _>>()?;
    Ok(Capture { link, packets })
}

/// Writes a microsecond-resolution, little-endian pcap file.
///
/// Fails with `InvalidInput` when a packet does not fit the format: more
/// captured bytes than `snaplen`, or a timestamp beyond 2106.
pub fn write_pcap(w: impl Write, link: u32, snaplen: u32, packets: &[Packet]) -> io::Result<()> {
    let mut writer = PcapWriter::new(w, link, snaplen)?;
    for p in packets {
        writer.write(p)?;
    }
    writer.finish()
}

/// A pcap file written a packet at a time (microsecond resolution, little
/// endian), as `tcpdump -w` writes one: the header at once, then each
/// record. Buffered; [`finish`](PcapWriter::finish) flushes and reports
/// the last error.
pub struct PcapWriter<W: Write> {
    out: io::BufWriter<W>,
    snaplen: u32,
    written: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header for link type `link` and `snaplen`.
    pub fn new(w: W, link: u32, snaplen: u32) -> io::Result<PcapWriter<W>> {
        let mut out = io::BufWriter::new(w);
        let mut header = Vec::with_capacity(24);
        header.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        header.extend_from_slice(&2u16.to_le_bytes());
        header.extend_from_slice(&4u16.to_le_bytes());
        header.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        header.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        header.extend_from_slice(&snaplen.to_le_bytes());
        header.extend_from_slice(&link.to_le_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter {
            out,
            snaplen,
            written: 0,
        })
    }

    /// Appends `p`. Fails with `InvalidInput` (writing nothing of it) when
    /// it does not fit the format: more captured bytes than the snaplen,
    /// or a timestamp beyond 2106.
    pub fn write(&mut self, p: &Packet) -> io::Result<()> {
        self.write_ref(p.borrowed())
    }

    /// [`PcapWriter::write`] for a borrowed packet.
    pub fn write_ref(&mut self, p: PacketRef<'_>) -> io::Result<()> {
        let invalid = |what: String| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("packet {}: {what}", self.written + 1),
            )
        };
        let ts_sec = u32::try_from(p.ts_sec)
            .map_err(|_| invalid(format!("timestamp {} does not fit pcap", p.ts_sec)))?;
        if p.ts_nsec >= 1_000_000_000 {
            return Err(invalid(format!("nanoseconds {} out of range", p.ts_nsec)));
        }
        let snaplen = self.snaplen;
        let caplen = u32::try_from(p.data.len())
            .ok()
            .filter(|&c| c <= snaplen)
            .ok_or_else(|| {
                invalid(format!(
                    "{} captured bytes exceed the snaplen {snaplen}",
                    p.data.len()
                ))
            })?;
        let mut record = [0u8; 16];
        record[0..4].copy_from_slice(&ts_sec.to_le_bytes());
        record[4..8].copy_from_slice(&(p.ts_nsec / 1000).to_le_bytes());
        record[8..12].copy_from_slice(&caplen.to_le_bytes());
        record[12..16].copy_from_slice(&p.wire_len.to_le_bytes());
        self.out.write_all(&record)?;
        self.out.write_all(p.data)?;
        self.written += 1;
        Ok(())
    }

    /// Flushes what is buffered.
    pub fn finish(mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A streaming reader of packets from a pcap or pcapng file.
///
/// The link type is known as soon as the reader is built (for pcapng, the
/// first interface description is read then). It refuses what libpcap
/// 1.10.3 refuses, at the same point: a fault in the file header or before
/// the first interface description fails [`PacketReader::new`]; a fault in
/// a later record ends the iteration with an error after the packets before
/// it.
pub struct PacketReader<'a> {
    src: Source<'a>,
    name: String,
    link: u32,
    snaplen: u32,
    format: Format,
    warnings: Vec<String>,
    /// Packets handed out so far (for warnings).
    count: u64,
    /// Records cut to the snapshot length (the first has a warning of its
    /// own, the others are counted).
    cut: u64,
    done: bool,
}

enum Format {
    Pcap(Pcap),
    Ng(Ng),
}

/// What the pcap file header says about the records.
struct Pcap {
    big_endian: bool,
    /// The fraction field holds nanoseconds.
    nanos: bool,
    /// 16, or 24 for Kuznetzov's patched format.
    header_size: usize,
    lengths: Lengths,
}

/// libpcap's `lengths_swapped`: caplen and len traded places in the
/// record header at version 2.3.
#[derive(Clone, Copy)]
enum Lengths {
    Normal,
    Swapped,
    /// Version 2.3: swapped when caplen > len.
    MaybeSwapped,
}

/// The pcapng state: byte order and the current section's interfaces.
struct Ng {
    big_endian: bool,
    /// libpcap's `max_blocksize`.
    max_block: u32,
    interfaces: Vec<Interface>,
}

struct Interface {
    /// Timestamp units per second.
    resolution: u64,
    /// Seconds added to every timestamp.
    offset: i64,
}

/// A pcapng block just read: its type and where the bytes between its
/// header and trailer are in the reader's buffer.
struct RawBlock {
    kind: u32,
    start: usize,
    len: usize,
}

fn get_u16(b: &[u8], at: usize, big_endian: bool) -> u16 {
    let v = [b[at], b[at + 1]];
    if big_endian {
        u16::from_be_bytes(v)
    } else {
        u16::from_le_bytes(v)
    }
}

fn get_u32(b: &[u8], at: usize, big_endian: bool) -> u32 {
    let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if big_endian {
        u32::from_be_bytes(v)
    } else {
        u32::from_le_bytes(v)
    }
}

fn get_u64(b: &[u8], at: usize, big_endian: bool) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    if big_endian {
        u64::from_be_bytes(v)
    } else {
        u64::from_le_bytes(v)
    }
}

/// libpcap's `max_snaplen_for_dlt`: the most captured bytes a record of
/// this link type may have.
fn max_snaplen_for_link(link: u32) -> u32 {
    match link {
        231 => 128 << 20, // DBUS
        279 => 8 << 20,   // EBHSCR
        249 => 1 << 20,   // USBPCAP
        _ => MAXIMUM_SNAPLEN,
    }
}

/// libpcap's `linktype_to_dlt` on Linux, for the LINKTYPE values whose DLT
/// value differs there (all others are their own DLT value).
fn linktype_to_dlt(linktype: u32) -> u32 {
    match linktype {
        100 => 11, // ATM_RFC1483
        101 => 12, // RAW
        102 => 15, // SLIP_BSDOS
        103 => 16, // PPP_BSDOS
        106 => 19, // ATM_CLIP
        other => other,
    }
}

/// libpcap's `pcap_adjust_snapshot`: 0, or more than `INT_MAX`, means the
/// link type's maximum; any other value stands, even above that maximum.
fn adjust_snapshot(link: u32, snaplen: u32) -> u32 {
    if snaplen == 0 || snaplen > i32::MAX as u32 {
        max_snaplen_for_link(link)
    } else {
        snaplen
    }
}

/// libpcap's message for a record with more captured bytes than allowed.
fn oversized(caplen: u32, snaplen: u32) -> String {
    format!("invalid packet capture length {caplen}, bigger than snaplen of {snaplen}")
}

/// libpcap's message for a pcapng block whose contents run past its end;
/// `what` says which contents.
fn too_short(kind: u32, what: &str) -> String {
    let name = match kind {
        BT_SHB => " (section header)",
        BT_IDB => " (interface description)",
        BT_PB => " (packet)",
        BT_SPB => " (simple packet)",
        BT_EPB => " (enhanced packet)",
        _ => "",
    };
    format!("block of type {kind}{name} in pcapng dump file is too short: {what}")
}

impl PacketReader<'static> {
    /// Opens a capture file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let file = File::open(path).map_err(|source| CaptureError::Io {
            file: name.clone(),
            source,
        })?;
        PacketReader::new(file, name)
    }
}

impl<'a> PacketReader<'a> {
    /// Starts reading a capture from `input`; `name` is used in error messages.
    pub fn new(input: impl Read + 'a, name: impl Into<String>) -> Result<Self, CaptureError> {
        let mut reader = PacketReader {
            src: Source::new(input),
            name: name.into(),
            link: 0,
            snaplen: 0,
            format: Format::Pcap(Pcap {
                big_endian: false,
                nanos: false,
                header_size: 16,
                lengths: Lengths::Normal,
            }),
            warnings: Vec::new(),
            count: 0,
            cut: 0,
            done: false,
        };
        let mut magic = [0u8; 4];
        let got = reader.fill(&mut magic)?;
        if got < 4 {
            return Err(reader.fail(format!(
                "{got} bytes is too short for a capture file header"
            )));
        }
        let le = u32::from_le_bytes(magic);
        let be = u32::from_be_bytes(magic);
        if le == BT_SHB {
            reader.open_pcapng()?;
        } else if [TCPDUMP_MAGIC, NSEC_TCPDUMP_MAGIC, KUZNETZOV_TCPDUMP_MAGIC].contains(&le) {
            reader.open_pcap(le, false)?;
        } else if [TCPDUMP_MAGIC, NSEC_TCPDUMP_MAGIC, KUZNETZOV_TCPDUMP_MAGIC].contains(&be) {
            reader.open_pcap(be, true)?;
        } else {
            return Err(reader.fail(format!(
                "not a pcap or pcapng file (magic number 0x{be:08x})"
            )));
        }
        Ok(reader)
    }

    /// The LINKTYPE_* value of the packets (for pcap, without the upper
    /// bits libpcap masks off).
    pub fn link(&self) -> u32 {
        self.link
    }

    /// The snapshot length as libpcap uses it: the file's (pcapng: the first
    /// interface's), or the link type's maximum (262144 for most) when that
    /// is 0 or above `INT_MAX`. pcap records with more captured bytes, but
    /// not more than that maximum, are cut to it, as libpcap cuts them (with
    /// a [warning](Self::warnings)).
    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// What was read but looks wrong, so far: libpcap reads these without a
    /// word, we say so (each message names the file; records cut to the
    /// snapshot length are told once, with a count of the others).
    pub fn warnings(&self) -> Vec<String> {
        let mut all = self.warnings.clone();
        if self.cut > 1 {
            all.push(format!(
                "{}: {} more packets were cut to the snapshot length {}",
                self.name,
                self.cut - 1,
                self.snaplen
            ));
        }
        all
    }

    fn warn(&mut self, message: String) {
        self.warnings.push(format!("{}: {message}", self.name));
    }

    /// A format error, which ends the reading.
    fn fail(&mut self, message: String) -> CaptureError {
        self.done = true;
        CaptureError::Format {
            file: self.name.clone(),
            message,
        }
    }

    /// Fills `buf` as far as the input allows; an I/O error ends the reading.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, CaptureError> {
        self.src
            .read_into(buf)
            .map_err(|source| self.io_error(source))
    }

    fn read_up_to(&mut self, len: u64) -> Result<Vec<u8>, CaptureError> {
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        self.src
            .read_vec(len)
            .map_err(|source| self.io_error(source))
    }

    /// Makes `n` bytes available in the buffer if the input has them;
    /// how many are.
    fn ensure(&mut self, n: usize) -> Result<usize, CaptureError> {
        self.src.ensure(n).map_err(|source| self.io_error(source))
    }

    fn io_error(&mut self, source: io::Error) -> CaptureError {
        self.done = true;
        CaptureError::Io {
            file: self.name.clone(),
            source,
        }
    }

    /// libpcap's `pcap_check_header`, after the magic number.
    fn open_pcap(&mut self, magic: u32, big_endian: bool) -> Result<(), CaptureError> {
        let mut hdr = [0u8; 24];
        let got = self.fill(&mut hdr[4..])?;
        if got < 20 {
            return Err(self.fail(format!(
                "bad pcap file header: truncated file; tried to read 24 file header bytes, only got {}",
                got + 4
            )));
        }
        let major = get_u16(&hdr, 4, big_endian);
        let minor = get_u16(&hdr, 6, big_endian);
        let snaplen = get_u32(&hdr, 16, big_endian);
        let linktype = get_u32(&hdr, 20, big_endian);
        if major < 2 {
            return Err(self.fail(format!(
                "archaic pcap savefile format (version {major}.{minor})"
            )));
        }
        // libpcap reads versions 2.0 to 2.4, and DG/UX tcpdump's 543.0.
        if !((major == 2 && minor <= 4) || (major == 543 && minor == 0)) {
            return Err(self.fail(format!("unsupported pcap savefile version {major}.{minor}")));
        }
        // LT_LINKTYPE: the upper 6 bits are flags (FCS length).
        self.link = linktype & 0x03ff_ffff;
        self.snaplen = adjust_snapshot(self.link, snaplen);
        let kuznetzov = magic == KUZNETZOV_TCPDUMP_MAGIC;
        if kuznetzov && self.link == LINKTYPE_EN10MB {
            // libpcap: a cooked capture's faked Ethernet header.
            self.snaplen = self.snaplen.saturating_add(14).min(i32::MAX as u32);
        }
        let lengths = match (major, minor) {
            (2, 0..=2) | (543, _) => Lengths::Swapped,
            (2, 3) => Lengths::MaybeSwapped,
            _ => Lengths::Normal,
        };
        self.format = Format::Pcap(Pcap {
            big_endian,
            nanos: magic == NSEC_TCPDUMP_MAGIC,
            header_size: if kuznetzov { 24 } else { 16 },
            lengths,
        });
        Ok(())
    }

    /// libpcap's `pcap_next_packet` for pcap.
    fn next_pcap(&mut self) -> Result<Option<Record>, CaptureError> {
        let Format::Pcap(ref f) = self.format else {
            unreachable!("a pcap reader")
        };
        let (big_endian, nanos, header_size, lengths) =
            (f.big_endian, f.nanos, f.header_size, f.lengths);
        let got = self.ensure(header_size)?.min(header_size);
        if got == 0 {
            self.done = true;
            return Ok(None);
        }
        if got < header_size {
            return Err(self.fail(format!(
                "truncated file; tried to read {header_size} header bytes, only got {got}"
            )));
        }
        let hdr = self.src.peek(header_size);
        let ts_sec = get_u32(hdr, 0, big_endian);
        let frac = get_u32(hdr, 4, big_endian);
        let mut caplen = get_u32(hdr, 8, big_endian);
        let mut len = get_u32(hdr, 12, big_endian);
        self.src.consume(header_size);
        let swap = match lengths {
            Lengths::Normal => false,
            Lengths::Swapped => true,
            Lengths::MaybeSwapped => caplen > len,
        };
        if swap {
            std::mem::swap(&mut caplen, &mut len);
        }
        let max = max_snaplen_for_link(self.link);
        if caplen > max {
            return Err(self.fail(if caplen > self.snaplen {
                oversized(caplen, self.snaplen)
            } else {
                format!("invalid packet capture length {caplen}, bigger than maximum of {max}")
            }));
        }
        // Within the link type's maximum: the whole record fits in memory.
        let got = self.ensure(caplen as usize)?.min(caplen as usize);
        // libpcap reads the first snaplen bytes and discards the rest.
        let keep = caplen.min(self.snaplen) as usize;
        if got < keep {
            return Err(self.fail(format!(
                "truncated file; tried to read {keep} captured bytes, only got {got}"
            )));
        }
        if got < caplen as usize {
            return Err(self.fail(format!(
                "truncated file; tried to read {caplen} captured bytes, only got {got}"
            )));
        }
        if caplen > self.snaplen {
            self.cut += 1;
            if self.cut == 1 {
                let snaplen = self.snaplen;
                self.warn(format!(
                    "packet {}: captured length {caplen} is bigger than the snapshot length {snaplen}; cut to it",
                    self.count + 1
                ));
            }
        }
        let start = self.src.pos();
        self.src.consume(caplen as usize);
        Ok(Some(Record {
            ts_sec: u64::from(ts_sec),
            ts_nsec: if nanos {
                frac
            } else {
                frac.saturating_mul(1000)
            },
            start,
            len: keep,
            wire_len: len,
        }))
    }

    /// libpcap's `pcap_ng_check_header`, after the block type: the section
    /// header, then blocks up to the first interface description.
    fn open_pcapng(&mut self) -> Result<(), CaptureError> {
        let mut fixed = [0u8; 8];
        let got = self.fill(&mut fixed)?;
        let not_pcapng = |reader: &mut Self| {
            reader.fail(format!(
                "not a pcap or pcapng file (magic number 0x{BT_SHB:08x}, but no pcapng byte-order magic)"
            ))
        };
        if got < 8 {
            return Err(not_pcapng(self));
        }
        let big_endian = match get_u32(&fixed, 4, false) {
            BYTE_ORDER_MAGIC => false,
            m if m.swap_bytes() == BYTE_ORDER_MAGIC => true,
            _ => return Err(not_pcapng(self)),
        };
        let total = get_u32(&fixed, 0, big_endian);
        if !(28..=SHB_INSANE_MAX).contains(&total) {
            return Err(self.fail(format!(
                "Section Header Block in pcapng dump file has invalid length {total} (it must be between 28 and {SHB_INSANE_MAX})"
            )));
        }
        // libpcap reads the rest of this first block without checking its
        // trailer or its alignment.
        let want = u64::from(total - 12);
        let rest = self.read_up_to(want)?;
        if (rest.len() as u64) < want {
            return Err(self.fail(format!(
                "truncated file; tried to read {want} bytes of a pcapng block, only got {}",
                rest.len()
            )));
        }
        let major = get_u16(&rest, 0, big_endian);
        let minor = get_u16(&rest, 2, big_endian);
        if !(major == 1 && (minor == 0 || minor == 2)) {
            return Err(self.fail(format!(
                "unsupported pcapng savefile version {major}.{minor}"
            )));
        }
        if !total.is_multiple_of(4) {
            self.warn(format!(
                "the first section header block has a length of {total} that is not a multiple of 4"
            ));
        }
        let trailer = get_u32(&rest, rest.len() - 4, big_endian);
        if trailer != total {
            self.warn(
                "the first section header block's total length in header and trailer don't match"
                    .into(),
            );
        }
        self.format = Format::Ng(Ng {
            big_endian,
            max_block: INITIAL_MAX_BLOCKSIZE,
            interfaces: Vec::new(),
        });
        loop {
            let Some(block) = self.read_block()? else {
                return Err(
                    self.fail("the capture file has no Interface Description Blocks".into())
                );
            };
            match block.kind {
                BT_IDB => {
                    let body = self.body(&block).to_vec();
                    return self.interface(&body, true);
                }
                BT_EPB | BT_SPB | BT_PB => {
                    return Err(self.fail(
                        "the capture file has a packet block before any Interface Description Blocks"
                            .into(),
                    ));
                }
                _ => {}
            }
        }
    }

    fn ng(&mut self) -> &mut Ng {
        match &mut self.format {
            Format::Ng(ng) => ng,
            Format::Pcap(_) => unreachable!("a pcapng reader"),
        }
    }

    /// libpcap's `read_block`: `None` at the end of the file. The block
    /// is consumed; its body (between header and trailer) stays in the
    /// buffer until the next read.
    fn read_block(&mut self) -> Result<Option<RawBlock>, CaptureError> {
        let (big_endian, max_block) = {
            let ng = self.ng();
            (ng.big_endian, ng.max_block)
        };
        let got = self.ensure(8)?.min(8);
        if got == 0 {
            return Ok(None);
        }
        if got < 8 {
            return Err(self.fail(format!(
                "truncated file; tried to read 8 bytes of a pcapng block header, only got {got}"
            )));
        }
        let hdr = self.src.peek(8);
        let kind = get_u32(hdr, 0, big_endian);
        let total = get_u32(hdr, 4, big_endian);
        self.src.consume(8);
        if total < 12 {
            return Err(self.fail(format!(
                "block in pcapng dump file has a length of {total} < 12"
            )));
        }
        if !total.is_multiple_of(4) {
            return Err(self.fail(format!(
                "block in pcapng dump file has a length of {total} that is not a multiple of 4"
            )));
        }
        if total > max_block {
            return Err(self.fail(format!("pcapng block size {total} > maximum {max_block}")));
        }
        let want = (total - 8) as usize;
        let got = self.ensure(want)?.min(want);
        if got < want {
            return Err(self.fail(format!(
                "truncated file; tried to read {want} bytes of a pcapng block, only got {got}"
            )));
        }
        let trailer = get_u32(self.src.peek(want), want - 4, big_endian);
        if trailer != total {
            return Err(self.fail(format!(
                "block total length in header ({total}) and trailer ({trailer}) don't match"
            )));
        }
        let start = self.src.pos();
        self.src.consume(want);
        Ok(Some(RawBlock {
            kind,
            start,
            len: want - 4,
        }))
    }

    /// The body of `block`, just read.
    fn body(&self, block: &RawBlock) -> &[u8] {
        &self.src.bytes()[block.start..block.start + block.len]
    }

    /// An interface description block: the first sets the link type and
    /// snapshot length, later ones must agree (libpcap's `add_interface`
    /// and the checks before it).
    fn interface(&mut self, body: &[u8], first: bool) -> Result<(), CaptureError> {
        let big_endian = self.ng().big_endian;
        if body.len() < 8 {
            return Err(self.fail(too_short(BT_IDB, "its fixed fields run past its end")));
        }
        let linktype = u32::from(get_u16(body, 0, big_endian));
        let snaplen = get_u32(body, 4, big_endian);
        let index = self.ng().interfaces.len();
        if first {
            self.link = linktype;
            self.snaplen = adjust_snapshot(linktype, snaplen);
            // libpcap's MAX_BLOCKSIZE_FOR_SNAPLEN.
            let for_link = 8 + 20 + max_snaplen_for_link(linktype) + 131_072 + 4;
            let ng = self.ng();
            ng.max_block = ng.max_block.max(for_link);
        } else {
            if linktype == self.link && linktype_to_dlt(linktype) != linktype {
                return Err(self.fail(format!(
                    "an interface has a type {linktype} different from the type of the first interface: libpcap 1.10.3 compares a later interface's LINKTYPE value with the first's DLT value ({}), so it refuses a second interface of {}",
                    linktype_to_dlt(linktype),
                    linktype_name(linktype)
                )));
            }
            if linktype != self.link {
                self.done = true;
                return Err(CaptureError::MixedLinkTypes {
                    file: self.name.clone(),
                    first: linktype_name(self.link),
                    other: linktype_name(linktype),
                    interface: index,
                });
            }
            if adjust_snapshot(linktype, snaplen) != self.snaplen {
                let first = self.snaplen;
                return Err(self.fail(format!(
                    "interface {index} has a snapshot length {snaplen} different from the snapshot length {first} of the first interface"
                )));
            }
        }
        let iface = self
            .interface_options(&body[8..], big_endian)
            .map_err(|message| self.fail(message))?;
        self.ng().interfaces.push(iface);
        Ok(())
    }

    /// libpcap's `process_idb_options`: every option must fit the block;
    /// if_tsresol and if_tsoffset are checked.
    fn interface_options(&self, mut opts: &[u8], big_endian: bool) -> Result<Interface, String> {
        let idb = |what: &str| format!("Interface Description Block {what}");
        let mut resolution = None;
        let mut offset = None;
        while !opts.is_empty() {
            if opts.len() < 4 {
                return Err(too_short(BT_IDB, "an option header runs past its end"));
            }
            let code = get_u16(opts, 0, big_endian);
            let len = get_u16(opts, 2, big_endian);
            let padded = usize::from(len).div_ceil(4) * 4;
            if opts.len() - 4 < padded {
                return Err(too_short(
                    BT_IDB,
                    &format!("option {code} of length {len} runs past its end"),
                ));
            }
            let value = &opts[4..4 + usize::from(len)];
            opts = &opts[4 + padded..];
            match code {
                0 => {
                    if len != 0 {
                        return Err(idb(&format!(
                            "has opt_endofopt option with length {len} != 0"
                        )));
                    }
                    break;
                }
                9 => {
                    if len != 1 {
                        return Err(idb(&format!(
                            "has if_tsresol option with length {len} != 1"
                        )));
                    }
                    if resolution.is_some() {
                        return Err(idb("has more than one if_tsresol option"));
                    }
                    let r = value[0];
                    let exp = u32::from(r & 0x7f);
                    resolution = Some(if r & 0x80 != 0 {
                        if exp > 63 {
                            return Err(idb(&format!(
                                "if_tsresol option resolution 2^-{exp} is too high"
                            )));
                        }
                        1u64 << exp
                    } else {
                        if exp > 19 {
                            return Err(idb(&format!(
                                "if_tsresol option resolution 10^-{exp} is too high"
                            )));
                        }
                        10u64.pow(exp)
                    });
                }
                14 => {
                    if len != 8 {
                        return Err(idb(&format!(
                            "has if_tsoffset option with length {len} != 8"
                        )));
                    }
                    if offset.is_some() {
                        return Err(idb("has more than one if_tsoffset option"));
                    }
                    offset = Some(get_u64(value, 0, big_endian) as i64);
                }
                _ => {}
            }
        }
        Ok(Interface {
            resolution: resolution.unwrap_or(1_000_000),
            offset: offset.unwrap_or(0),
        })
    }

    /// libpcap's `pcap_ng_next_packet`.
    fn next_pcapng(&mut self) -> Result<Option<Record>, CaptureError> {
        let big_endian = self.ng().big_endian;
        let (kind, if_id, ticks, caplen, len, data_at, block) = loop {
            let Some(block) = self.read_block()? else {
                self.done = true;
                return Ok(None);
            };
            let body = self.body(&block);
            match block.kind {
                BT_EPB | BT_PB => {
                    if body.len() < 20 {
                        return Err(
                            self.fail(too_short(block.kind, "its fixed fields run past its end"))
                        );
                    }
                    let ticks = (u64::from(get_u32(body, 4, big_endian)) << 32)
                        | u64::from(get_u32(body, 8, big_endian));
                    let caplen = get_u32(body, 12, big_endian);
                    let len = get_u32(body, 16, big_endian);
                    let if_id = if block.kind == BT_EPB {
                        get_u32(body, 0, big_endian)
                    } else {
                        u32::from(get_u16(body, 0, big_endian))
                    };
                    break (block.kind, if_id, ticks, caplen, len, 20, block);
                }
                BT_SPB => {
                    if body.len() < 4 {
                        return Err(
                            self.fail(too_short(BT_SPB, "its fixed fields run past its end"))
                        );
                    }
                    let len = get_u32(body, 0, big_endian);
                    // No captured length: the packet's, up to the snapshot length.
                    break (BT_SPB, 0, 0, len.min(self.snaplen), len, 4, block);
                }
                BT_IDB => {
                    let body = body.to_vec();
                    self.interface(&body, false)?;
                }
                BT_SHB => {
                    let body = body.to_vec();
                    self.section(&body)?;
                }
                _ => {}
            }
        };
        let Some(iface) = self.ng().interfaces.get(if_id as usize) else {
            return Err(self.fail(format!(
                "a packet arrived on interface {if_id}, but there's no Interface Description Block for that interface"
            )));
        };
        let (resolution, offset) = (iface.resolution, iface.offset);
        if caplen > self.snaplen {
            return Err(self.fail(oversized(caplen, self.snaplen)));
        }
        let room = block.len - data_at;
        if room < caplen as usize {
            return Err(self.fail(too_short(
                kind,
                &format!(
                    "its packet data (capture length {caplen}) runs past its end ({room} bytes)"
                ),
            )));
        }
        let (ts_sec, ts_nsec) = split_ticks(ticks, resolution, offset);
        Ok(Some(Record {
            ts_sec,
            ts_nsec,
            start: block.start + data_at,
            len: caplen as usize,
            wire_len: len,
        }))
    }

    /// A section header block after the first: same byte order, major
    /// version 1; a new set of interfaces.
    fn section(&mut self, body: &[u8]) -> Result<(), CaptureError> {
        let big_endian = self.ng().big_endian;
        if body.len() < 16 {
            return Err(self.fail(too_short(BT_SHB, "its fixed fields run past its end")));
        }
        match get_u32(body, 0, big_endian) {
            BYTE_ORDER_MAGIC => {}
            m if m.swap_bytes() == BYTE_ORDER_MAGIC => {
                return Err(self.fail("the file has sections with different byte orders".into()));
            }
            _ => {
                return Err(
                    self.fail("the file has a section with a bad byte order magic field".into())
                );
            }
        }
        let major = get_u16(body, 4, big_endian);
        if major != 1 {
            return Err(self.fail(format!(
                "unknown pcapng savefile major version number {major}"
            )));
        }
        self.ng().interfaces.clear();
        Ok(())
    }
}

/// Splits a pcapng timestamp into seconds and nanoseconds.
fn split_ticks(ticks: u64, resolution: u64, offset: i64) -> (u64, u32) {
    let resolution = resolution.max(1);
    let secs = ticks / resolution;
    let frac = u128::from(ticks % resolution);
    let nsec = (frac * 1_000_000_000 / u128::from(resolution)) as u32;
    (secs.saturating_add_signed(offset), nsec)
}

impl PacketReader<'_> {
    /// The next packet, its bytes lent from the reader's buffer until the
    /// next call: no copy and no allocation per packet. `None` at the
    /// end; an error ends the reading, after the packets before it.
    pub fn next_ref(&mut self) -> Option<Result<PacketRef<'_>, CaptureError>> {
        if self.done {
            return None;
        }
        let result = match self.format {
            Format::Pcap(_) => self.next_pcap(),
            Format::Ng(_) => self.next_pcapng(),
        };
        match result {
            Ok(Some(r)) => {
                self.count += 1;
                Some(Ok(PacketRef {
                    ts_sec: r.ts_sec,
                    ts_nsec: r.ts_nsec,
                    data: &self.src.bytes()[r.start..r.start + r.len],
                    wire_len: r.wire_len,
                }))
            }
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Owned packets, read as [`PacketReader::next_ref`] reads them.
impl Iterator for PacketReader<'_> {
    type Item = Result<Packet, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_ref().map(|r| r.map(|p| p.to_packet()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(ts_sec: u64, ts_nsec: u32, data: &[u8], wire_len: u32) -> Packet {
        Packet {
            ts_sec,
            ts_nsec,
            data: data.to_vec(),
            wire_len,
        }
    }

    #[test]
    fn linktype_names() {
        assert_eq!(linktype_name(9), "LINKTYPE 9 (PPP)");
        assert_eq!(linktype_name(4242), "LINKTYPE 4242");
    }

    #[test]
    fn writes_the_pcap_format_byte_for_byte() {
        let mut out = Vec::new();
        write_pcap(
            &mut out,
            1,
            100,
            &[pkt(0x0102_0304, 5_000, &[0xaa, 0xbb], 60)],
        )
        .unwrap();
        let expected: Vec<u8> = [
            &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0][..],
            &[0; 8],
            &[100, 0, 0, 0, 1, 0, 0, 0],
            &[4, 3, 2, 1, 5, 0, 0, 0, 2, 0, 0, 0, 60, 0, 0, 0, 0xaa, 0xbb],
        ]
        .concat();
        assert_eq!(out, expected);
    }

    #[test]
    fn round_trip_through_reader() {
        let packets = vec![
            pkt(1, 1_000, &[1, 2, 3], 3),
            pkt(2, 999_999_000, &[], 70),
            pkt(3, 0, &[9; 40], 1500),
        ];
        let mut out = Vec::new();
        write_pcap(&mut out, 113, 65535, &packets).unwrap();
        let cap = read_from(&out[..]).unwrap();
        assert_eq!(cap.link, 113);
        assert_eq!(cap.packets, packets);
    }

    #[test]
    fn write_refuses_what_pcap_cannot_hold() {
        let mut out = Vec::new();
        let err = write_pcap(&mut out, 1, 2, &[pkt(0, 0, &[1, 2, 3], 3)]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = write_pcap(&mut out, 1, 10, &[pkt(1 << 33, 0, &[1], 1)]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    /// libpcap cuts records longer than the header's snaplen; so do we.
    #[test]
    fn records_are_cut_to_the_snapshot_length() {
        let mut f = Vec::new();
        write_pcap(&mut f, 1, 100, &[pkt(0, 0, &[1, 2, 3, 4, 5, 6], 60)]).unwrap();
        f[16] = 4; // snaplen 100 -> 4
        let mut reader = PacketReader::new(&f[..], "x").unwrap();
        assert_eq!(reader.snaplen(), 4);
        assert_eq!(
            reader.next().unwrap().unwrap(),
            pkt(0, 0, &[1, 2, 3, 4], 60)
        );
        drop(reader);
        f[16] = 0; // 0 means libpcap's maximum
        let reader = PacketReader::new(&f[..], "x").unwrap();
        assert_eq!(reader.snaplen(), 262_144);
    }

    /// Cut records are told once, then counted.
    #[test]
    fn cut_records_are_told_once() {
        let mut f = Vec::new();
        let p = pkt(0, 0, &[1, 2, 3, 4, 5, 6], 60);
        write_pcap(&mut f, 1, 100, &[p.clone(), p.clone(), p]).unwrap();
        f[16] = 4;
        let mut reader = PacketReader::new(&f[..], "x").unwrap();
        assert!(reader.warnings().is_empty());
        assert_eq!(reader.by_ref().filter(Result::is_ok).count(), 3);
        assert_eq!(
            reader.warnings(),
            [
                "x: packet 1: captured length 6 is bigger than the snapshot length 4; cut to it",
                "x: 2 more packets were cut to the snapshot length 4"
            ]
        );
    }

    /// A big-endian nanosecond pcap, written by hand.
    #[test]
    fn reads_big_endian_nanosecond_pcap() {
        let mut f = vec![0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4];
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&[0, 0, 0xff, 0xff, 0, 0, 0, 101]);
        f.extend_from_slice(&[
            0, 0, 0, 7, 0x3b, 0x9a, 0xc9, 0xff, 0, 0, 0, 2, 0, 0, 0, 20, 0x45, 0,
        ]);
        let cap = read_from(&f[..]).unwrap();
        assert_eq!(cap.link, 101);
        assert_eq!(cap.packets, vec![pkt(7, 999_999_999, &[0x45, 0], 20)]);
    }

    /// A little-endian pcapng with two interfaces of the same link type,
    /// microsecond and 2^-10 s resolutions, written by hand.
    #[test]
    fn reads_pcapng_with_resolutions() {
        let mut f = Vec::new();
        // SHB: type, len 28, BOM, v1.0, section length -1, len.
        for w in [0x0a0d_0d0au32, 28, 0x1a2b_3c4d, 1] {
            f.extend_from_slice(&w.to_le_bytes());
        }
        f.extend_from_slice(&u64::MAX.to_le_bytes());
        f.extend_from_slice(&28u32.to_le_bytes());
        // IDB 0: EN10MB, snaplen 0, no options.
        for w in [1u32, 20, 1, 0, 20] {
            f.extend_from_slice(&w.to_le_bytes());
        }
        // IDB 1: EN10MB, if_tsresol = 0x8a (2^-10 s).
        for w in [1u32, 32, 1, 0] {
            f.extend_from_slice(&w.to_le_bytes());
        }
        f.extend_from_slice(&[9, 0, 1, 0, 0x8a, 0, 0, 0, 0, 0, 0, 0]);
        f.extend_from_slice(&32u32.to_le_bytes());
        // EPB on interface 0: 1.5 s in microseconds, 3 bytes of 10.
        for w in [6u32, 36, 0, 0, 1_500_000, 3, 10] {
            f.extend_from_slice(&w.to_le_bytes());
        }
        f.extend_from_slice(&[1, 2, 3, 0]);
        f.extend_from_slice(&36u32.to_le_bytes());
        // EPB on interface 1: 2048 + 512 ticks of 1/1024 s = 2.5 s.
        for w in [6u32, 32, 1, 0, 2560, 0, 0, 32] {
            f.extend_from_slice(&w.to_le_bytes());
        }
        let cap = read_from(&f[..]).unwrap();
        assert_eq!(cap.link, 1);
        assert_eq!(
            cap.packets,
            vec![
                pkt(1, 500_000_000, &[1, 2, 3], 10),
                pkt(2, 500_000_000, &[], 0)
            ]
        );

        // The same file with interface 1 made LINUX_SLL is refused.
        let mut mixed = f.clone();
        mixed[56] = 113; // IDB 1 starts at 48; its link type at 56
        let err = read_from(&mixed[..]).unwrap_err().to_string();
        assert!(
            err.contains("interface 1 has link type LINKTYPE 113 (LINUX_SLL)"),
            "{err}"
        );
        assert!(err.contains("LINKTYPE 1 (EN10MB)"), "{err}");
    }

    #[test]
    fn clear_errors_for_bad_files() {
        let msg = |bytes: &[u8]| read_from(bytes).unwrap_err().to_string();
        assert_eq!(
            msg(b""),
            "<input>: 0 bytes is too short for a capture file header"
        );
        assert_eq!(
            msg(b"GIF89a........................"),
            "<input>: not a pcap or pcapng file (magic number 0x47494638)"
        );
        let m = msg(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0]);
        assert!(
            m.starts_with("<input>: bad pcap file header: truncated"),
            "{m}"
        );

        // A record header announcing more bytes than the file has.
        let mut f = Vec::new();
        write_pcap(&mut f, 1, 100, &[pkt(0, 0, &[1; 20], 20)]).unwrap();
        f.truncate(f.len() - 5);
        let m = msg(&f);
        assert!(m.contains("truncated file"), "{m}");
        // The packets before the damage still come out of the streaming reader.
        let mut g = Vec::new();
        write_pcap(
            &mut g,
            1,
            100,
            &[pkt(0, 0, &[1; 20], 20), pkt(1, 0, &[2; 20], 20)],
        )
        .unwrap();
        g.truncate(g.len() - 5);
        let items: Vec<_> = PacketReader::new(&g[..], "x.pcap").unwrap().collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert!(
            items[1]
                .as_ref()
                .unwrap_err()
                .to_string()
                .starts_with("x.pcap: truncated file")
        );

        let e = read("/nonexistent/file.pcap").unwrap_err().to_string();
        assert!(e.starts_with("/nonexistent/file.pcap: "), "{e}");
    }

    #[test]
    fn huge_record_length_is_an_error_not_an_allocation() {
        let mut f = Vec::new();
        write_pcap(&mut f, 1, 100, &[]).unwrap();
        f.extend_from_slice(&[
            0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x7f,
        ]);
        f.extend_from_slice(&[0; 100]);
        let m = read_from(&f[..]).unwrap_err().to_string();
        assert!(m.starts_with("<input>: "), "{m}");
    }
}
