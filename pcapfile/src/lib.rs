//! pcapfile: capture files for the filter tools. Reading pcap and pcapng
//! (through `pcap-parser`), with libpcap's limits and errors; writing
//! microsecond pcap; the LINKTYPE_* values of the link types the
//! compilers handle.
//!
//! Reading streams: [`PacketReader`] yields one [`Packet`] at a time from any
//! `Read`; [`read`] and [`read_from`] collect a whole [`Capture`].

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use pcap_parser::pcapng::Block;
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};

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

/// The largest packet record we accept (pcapng blocks are capped at 16 MiB
/// by libpcap too); it bounds the read buffer a bogus length can make us grow.
const MAX_RECORD: usize = 16 << 20;
/// libpcap's largest snapshot length (MAXIMUM_SNAPLEN) for the link types
/// we handle: a record with more captured bytes is an error, and a header
/// snaplen of 0 or beyond it means this.
const MAXIMUM_SNAPLEN: u32 = 262_144;
/// The initial read buffer.
const INITIAL_BUFFER: usize = 1 << 16;

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
pub fn write_pcap(
    mut w: impl Write,
    link: u32,
    snaplen: u32,
    packets: &[Packet],
) -> io::Result<()> {
    let mut out = Vec::with_capacity(24 + packets.iter().map(|p| 16 + p.data.len()).sum::<usize>());
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&snaplen.to_le_bytes());
    out.extend_from_slice(&link.to_le_bytes());
    for (i, p) in packets.iter().enumerate() {
        let invalid = |what: String| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("packet {}: {what}", i + 1),
            )
        };
        let ts_sec = u32::try_from(p.ts_sec)
            .map_err(|_| invalid(format!("timestamp {} does not fit pcap", p.ts_sec)))?;
        if p.ts_nsec >= 1_000_000_000 {
            return Err(invalid(format!("nanoseconds {} out of range", p.ts_nsec)));
        }
        let caplen = u32::try_from(p.data.len())
            .ok()
            .filter(|&c| c <= snaplen)
            .ok_or_else(|| {
                invalid(format!(
                    "{} captured bytes exceed the snaplen {snaplen}",
                    p.data.len()
                ))
            })?;
        out.extend_from_slice(&ts_sec.to_le_bytes());
        out.extend_from_slice(&(p.ts_nsec / 1000).to_le_bytes());
        out.extend_from_slice(&caplen.to_le_bytes());
        out.extend_from_slice(&p.wire_len.to_le_bytes());
        out.extend_from_slice(&p.data);
    }
    w.write_all(&out)
}

/// A streaming reader of packets from a pcap or pcapng file.
///
/// The link type is known as soon as the reader is built (for pcapng, the
/// first interface description is read then).
pub struct PacketReader<'a> {
    inner: Box<dyn PcapReaderIterator + 'a>,
    state: State,
    io_error: Arc<Mutex<Option<io::Error>>>,
    capacity: usize,
    done: bool,
}

/// What the blocks seen so far tell about the packets to come.
struct State {
    name: String,
    link: Option<u32>,
    snaplen: u32,
    /// Legacy pcap: the fraction field holds nanoseconds.
    nanos: bool,
    /// pcapng: the interfaces of the current section.
    interfaces: Vec<Interface>,
}

struct Interface {
    linktype: u32,
    snaplen: u32,
    /// Timestamp units per second.
    resolution: u64,
    /// Seconds added to every timestamp.
    offset: i64,
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
        let name = name.into();
        let io_error = Arc::new(Mutex::new(None));
        let mut input = Tap {
            inner: input,
            error: Arc::clone(&io_error),
        };
        let mut magic = [0u8; 4];
        let got = Fill(&mut input)
            .read(&mut magic)
            .map_err(|source| CaptureError::Io {
                file: name.clone(),
                source,
            })?;
        let format = |message: String| CaptureError::Format {
            file: name.clone(),
            message,
        };
        if got < 4 {
            return Err(format(format!(
                "{got} bytes is too short for a capture file header"
            )));
        }
        let input = Fill(io::Cursor::new(magic).chain(input));
        let le = u32::from_le_bytes(magic);
        let inner: Box<dyn PcapReaderIterator + 'a> = match le {
            0x0a0d_0d0a => Box::new(
                PcapNGReader::new(INITIAL_BUFFER, input)
                    .map_err(|e| format(format!("bad pcapng section header: {}", describe(&e))))?,
            ),
            0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 | 0xa1b2_cd34 => Box::new(
                LegacyPcapReader::new(INITIAL_BUFFER, input)
                    .map_err(|e| format(format!("bad pcap file header: {}", describe(&e))))?,
            ),
            _ => {
                return Err(format(format!(
                    "not a pcap or pcapng file (magic number 0x{:08x})",
                    u32::from_be_bytes(magic)
                )));
            }
        };
        let mut reader = PacketReader {
            inner,
            state: State {
                name,
                link: None,
                snaplen: 0,
                nanos: false,
                interfaces: Vec::new(),
            },
            io_error,
            capacity: INITIAL_BUFFER,
            done: false,
        };
        // Read up to the first header or interface description: the link type.
        // No packet can come first: `State::handle` refuses packets on
        // unknown interfaces.
        while reader.state.link.is_none() {
            reader.next_block()?;
            if reader.done && reader.state.link.is_none() {
                return Err(reader.format_error(
                    "no interface description block before the end of the file".into(),
                ));
            }
        }
        Ok(reader)
    }

    /// The LINKTYPE_* value of the packets.
    pub fn link(&self) -> u32 {
        self.state.link.unwrap_or(0)
    }

    /// The snapshot length as libpcap uses it: the file's (pcapng: the first
    /// interface's), or 262144 when that is 0 or larger. Packets with more
    /// captured bytes are cut to it, as libpcap cuts them.
    pub fn snaplen(&self) -> u32 {
        self.state.snaplen
    }

    fn format_error(&self, message: String) -> CaptureError {
        CaptureError::Format {
            file: self.state.name.clone(),
            message,
        }
    }

    /// Reads one block. `Ok(None)` for blocks that are not packets (and at
    /// the end, with `done` set).
    fn next_block(&mut self) -> Result<Option<Packet>, CaptureError> {
        loop {
            if self.done {
                return Ok(None);
            }
            let outcome = match self.inner.next() {
                Ok((used, block)) => {
                    let result = self.state.handle(block);
                    Ok((used, result))
                }
                Err(e) => Err(Step::from(e)),
            };
            match outcome {
                Ok((used, result)) => {
                    self.inner.consume(used);
                    if result.is_err() {
                        self.done = true;
                    }
                    return result;
                }
                Err(Step::End) => {
                    self.done = true;
                    return Ok(None);
                }
                Err(Step::Refill) => self.refill()?,
                Err(Step::Grow) => {
                    self.capacity *= 2;
                    if self.capacity > 2 * MAX_RECORD || !self.inner.grow(self.capacity) {
                        self.done = true;
                        return Err(self.format_error(format!(
                            "a packet record is larger than {} MiB",
                            MAX_RECORD >> 20
                        )));
                    }
                    self.refill()?;
                }
                Err(Step::Fail(message)) => {
                    self.done = true;
                    return Err(self.format_error(message));
                }
            }
        }
    }

    fn refill(&mut self) -> Result<(), CaptureError> {
        if self.inner.refill().is_ok() {
            return Ok(());
        }
        self.done = true;
        let taken = self.io_error.lock().ok().and_then(|mut e| e.take());
        Err(CaptureError::Io {
            file: self.state.name.clone(),
            source: taken.unwrap_or_else(|| io::Error::other("read error")),
        })
    }
}

/// What to do after a failed `next()`, without borrowing the buffer.
enum Step {
    End,
    Refill,
    Grow,
    Fail(String),
}

impl From<PcapError<&[u8]>> for Step {
    fn from(e: PcapError<&[u8]>) -> Step {
        match e {
            PcapError::Eof => Step::End,
            PcapError::Incomplete(_) => Step::Refill,
            PcapError::BufferTooSmall => Step::Grow,
            other => Step::Fail(describe(&other)),
        }
    }
}

fn describe<I>(e: &PcapError<I>) -> String {
    match e {
        PcapError::Eof => "unexpected end of file".into(),
        PcapError::UnexpectedEof | PcapError::Incomplete(_) => {
            "truncated file: it ends inside a header or packet record".into()
        }
        PcapError::BufferTooSmall => "a record is too large".into(),
        PcapError::ReadError => "read error".into(),
        PcapError::HeaderNotRecognized => "header not recognised".into(),
        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
            format!("malformed block or record ({kind:?})")
        }
    }
}

impl State {
    /// The captured bytes libpcap hands over: at most the snapshot length.
    fn cut(&self, data: &[u8]) -> Vec<u8> {
        data[..data.len().min(self.snaplen as usize)].to_vec()
    }

    fn format_error(&self, message: String) -> CaptureError {
        CaptureError::Format {
            file: self.name.clone(),
            message,
        }
    }

    fn handle(&mut self, block: PcapBlockOwned<'_>) -> Result<Option<Packet>, CaptureError> {
        match block {
            PcapBlockOwned::LegacyHeader(h) => {
                self.link = Some(h.network.0 as u32);
                self.snaplen = adjust_snapshot(h.snaplen);
                self.nanos = h.is_nanosecond_precision();
                Ok(None)
            }
            PcapBlockOwned::Legacy(b) => {
                let ts_nsec = if self.nanos {
                    b.ts_usec
                } else {
                    b.ts_usec.saturating_mul(1000)
                };
                if b.caplen > MAXIMUM_SNAPLEN {
                    return Err(self.format_error(format!(
                        "invalid packet capture length {}, bigger than maximum of {MAXIMUM_SNAPLEN}",
                        b.caplen
                    )));
                }
                Ok(Some(Packet {
                    ts_sec: u64::from(b.ts_sec),
                    ts_nsec,
                    data: self.cut(b.data),
                    wire_len: b.origlen,
                }))
            }
            PcapBlockOwned::NG(block) => self.handle_ng(block),
        }
    }

    fn handle_ng(&mut self, block: Block<'_>) -> Result<Option<Packet>, CaptureError> {
        match block {
            Block::SectionHeader(_) => {
                self.interfaces.clear();
                Ok(None)
            }
            Block::InterfaceDescription(idb) => {
                let linktype = idb.linktype.0 as u32;
                match self.link {
                    None => {
                        self.link = Some(linktype);
                        self.snaplen = adjust_snapshot(idb.snaplen);
                    }
                    Some(first) if first != linktype => {
                        return Err(CaptureError::MixedLinkTypes {
                            file: self.name.clone(),
                            first: linktype_name(first),
                            other: linktype_name(linktype),
                            interface: self.interfaces.len(),
                        });
                    }
                    Some(_) => {}
                }
                let resolution = ts_resolution(idb.if_tsresol).ok_or_else(|| {
                    self.format_error(format!(
                        "interface {} has an unusable timestamp resolution (if_tsresol {})",
                        self.interfaces.len(),
                        idb.if_tsresol
                    ))
                })?;
                self.interfaces.push(Interface {
                    linktype,
                    snaplen: idb.snaplen,
                    resolution,
                    offset: idb.if_tsoffset,
                });
                Ok(None)
            }
            Block::EnhancedPacket(epb) => {
                let Some(iface) = self.interfaces.get(epb.if_id as usize) else {
                    return Err(self.format_error(format!(
                        "a packet refers to interface {} but only {} interfaces are described",
                        epb.if_id,
                        self.interfaces.len()
                    )));
                };
                debug_assert_eq!(Some(iface.linktype), self.link);
                let ticks = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                let (ts_sec, ts_nsec) = split_ticks(ticks, iface.resolution, iface.offset);
                Ok(Some(Packet {
                    ts_sec,
                    ts_nsec,
                    data: self.cut(epb.packet_data()),
                    wire_len: epb.origlen,
                }))
            }
            Block::SimplePacket(spb) => {
                let Some(iface) = self.interfaces.first() else {
                    return Err(self.format_error(
                        "a simple packet block comes before any interface description".into(),
                    ));
                };
                let mut data = spb.packet_data();
                if iface.snaplen != 0 && data.len() > iface.snaplen as usize {
                    data = &data[..iface.snaplen as usize];
                }
                Ok(Some(Packet {
                    ts_sec: 0,
                    ts_nsec: 0,
                    data: self.cut(data),
                    wire_len: spb.origlen,
                }))
            }
            _ => Ok(None),
        }
    }
}

/// libpcap's `pcap_adjust_snapshot`: 0 or too large means the maximum.
fn adjust_snapshot(snaplen: u32) -> u32 {
    if snaplen == 0 || snaplen > MAXIMUM_SNAPLEN {
        MAXIMUM_SNAPLEN
    } else {
        snaplen
    }
}

/// Units per second for a pcapng `if_tsresol` (high bit: power of two).
fn ts_resolution(tsresol: u8) -> Option<u64> {
    let exp = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(exp)
    } else {
        1u64.checked_shl(exp).filter(|_| exp < 64)
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

impl Iterator for PacketReader<'_> {
    type Item = Result<Packet, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.next_block() {
                Ok(Some(p)) => return Some(Ok(p)),
                Ok(None) if self.done => return None,
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Keeps the I/O errors of the input, which pcap-parser would reduce to
/// "read error".
struct Tap<R> {
    inner: R,
    error: Arc<Mutex<Option<io::Error>>>,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if e.kind() != io::ErrorKind::Interrupted
                && let Ok(mut slot) = self.error.lock()
            {
                *slot = Some(io::Error::new(e.kind(), e.to_string()));
            }
        })
    }
}

/// Makes each `read` fill the buffer as far as the input allows:
/// pcap-parser expects a whole file header from its first read.
struct Fill<R>(R);

impl<R: Read> Read for Fill<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.0.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
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
