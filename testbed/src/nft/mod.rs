//! nftables as an oracle: what the real `nft` (Debian's nftables, the
//! kernel's netdev ingress hook) does with each of a list of frames.
//!
//! [`NftBed`] is a namespace in which a ruleset's base chains hook the
//! device [`DEVICE`] (`veth0`): rulesets name it as `device "veth0"`.
//! Frames are sent into its veth peer, so they arrive at `veth0`'s
//! ingress exactly as sent, one by one.
//!
//! ```no_run
//! # fn main() -> testbed::Result<()> {
//! let mut bed = testbed::NftBed::new()?;
//! bed.load(
//!     r#"table netdev filter {
//!         chain ingress {
//!             type filter hook ingress device "veth0" priority 0; policy drop;
//!             tcp dport 22 counter accept
//!         }
//!     }"#,
//! )?;
//! let frames = testbed::firewall_frames(1);
//! let accepted: Vec<bool> = bed.verdicts(&frames)?;
//! let (packets, _bytes) = bed.counters()?.rule("ingress", 0).expect("a counter");
//! assert_eq!(packets, accepted.iter().filter(|&&a| a).count() as u64);
//! # Ok(()) }
//! ```
//!
//! # How a verdict is observed
//!
//! Besides the ruleset, the bed loads a table of its own with two base
//! chains on `veth0`'s ingress: `first`, at priority -2147483648, before
//! every chain of the ruleset, duplicates (`dup`) every frame to a
//! collector device: the frame *reached* the hook. `last`, at priority
//! 2147483647, after every chain of the ruleset, forwards (`fwd`) what
//! gets there, i.e. what every chain of the ruleset accepted, to another
//! collector. What the ruleset forwards to `veth1` ([`FORWARD_DEVICE`])
//! or back out of `veth0` is collected at these veths' peers. Packet
//! sockets read the collectors.
//!
//! Each frame is sent followed by a numbered *sentinel* (a random pair of
//! MAC addresses, EtherType 0x88b5). A tc filter on `veth0`'s ingress,
//! which runs before netfilter's, copies each sentinel to every
//! collector, so the sentinels never meet the ruleset. Every frame and
//! every sentinel takes one hop from `veth0`'s receive path to a
//! collector, through the same FIFO queue (one CPU's backlog: the sending
//! thread is pinned to one CPU, and the veths have no RPS), and `veth0`
//! finishes with one frame before it takes the next; so at every
//! collector, what came in between sentinel *k-1* and sentinel *k* is
//! exactly what became of frame *k*. Nothing is inferred from timing: the
//! last sentinel says that all frames are done, and a missing or
//! out-of-order sentinel, an extra or altered frame, a full socket buffer
//! or a drop in the CPU's backlog is an error ([`Error::Unexplained`]),
//! never a verdict. Frames go in windows of 32 (each waits for the
//! previous window's last sentinel), far below the backlog's 1,000
//! frames. A few hundred frames take a few milliseconds; loading a
//! ruleset takes about 30 ms, reading counters about 5 ms (one `nft`
//! process each).
//!
//! # What nft does at netdev ingress (measured on Linux 6.18, nft 1.0.6)
//!
//! - The receive path moves the *outer* VLAN tag (802.1Q or 802.1ad)
//!   into skb metadata before the hook; an inner tag stays in the data.
//!   nft rebuilds the outer tag for loads from the link header, so
//!   `ether type 8021q`/`8021ad` match as in the frame; `meta protocol`
//!   is what follows the outer tag (`ip` for a tagged IPv4 frame, `8021q`
//!   for QinQ), so `ip`/`tcp` matches see through one tag but not two.
//!   `vlan id` implies `ether type 8021q`: it does not match a frame whose
//!   outer tag is 802.1ad.
//! - `counter` bytes and `meta length` are `skb->len`, which at this hook
//!   excludes the Ethernet header and the outer tag: a frame of `n` bytes
//!   counts `n - 14` untagged and `n - 18` with one or two tags. A quota
//!   counts the same bytes; an `until` quota of `q` bytes passes a frame
//!   while the bytes consumed, this frame's included, are at most `q`,
//!   and nft lists the bytes used capped at `q`.
//! - A frame with EtherType 0x8100 or 0x88a8 and fewer than 20 bytes is
//!   freed by the kernel before any ingress hook (tc or netfilter):
//!   [`Outcome::NotReached`].
//! - Fragments: `meta l4proto` is the protocol of every fragment. Loads
//!   from the transport header of 1, 2 or 4 bytes aligned to their size
//!   (`tcp dport`, `th sport`, `tcp flags`, ...) run on the kernel's fast
//!   path, which does not check the fragment offset: on a later IPv4
//!   fragment they read its data as if it were a header; on a later IPv6
//!   fragment they read from the start of the IPv6 header (ipv6_find_hdr
//!   leaves the transport offset at 0). Other loads (3 bytes, unaligned)
//!   do not match later fragments.
//! - A frame that a chain forwards passes the target device's egress
//!   chains, which may drop it ([`Outcome::Drop`] then). The sentinels
//!   skip them (the kernel sets `nf_skip_egress` during tc ingress).
//! - Collected frames are the frames sent, minus their outer tag (which
//!   travels as metadata); the bed checks that.

mod counters;

pub use counters::{Counters, NamedCounter, NamedQuota, RuleCounter};

use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::cmd;
use crate::frame::Mac;
use crate::link::{self, Link};
use crate::{Error, Netns, PacketSocket, Result};

/// The device whose ingress the rulesets hook (`device "veth0"`).
pub const DEVICE: &str = "veth0";
/// A device the rulesets may forward to (`fwd to "veth1"`); what arrives
/// at its peer is [`Outcome::Forward`]`("veth1")`.
pub const FORWARD_DEVICE: &str = "veth1";

/// `veth0`'s peer: frames are sent here and come in at `veth0`.
const DEVICE_PEER: &str = "veth0p";
/// `veth1`'s peer, where frames forwarded to `veth1` are collected.
const FORWARD_PEER: &str = "veth1p";
/// Collects what passed every chain of the ruleset.
const ACCEPTED: (&str, &str) = ("nftacc", "nftaccp");
/// Collects a copy of every frame that reached the hook (and the
/// sentinels).
const REACHED: (&str, &str) = ("nftseen", "nftseenp");
/// The bed's own table.
const TABLE: &str = "testbed_oracle";
/// EtherType of the sentinels (IEEE's "local experimental"). A program
/// attached to [`DEVICE`] in front of netfilter (XDP, tcx) sees them
/// too, and must let them through for the bed to see its verdicts.
pub const SENTINEL_TYPE: u16 = 0x88b5;
/// Frames sent before waiting for their sentinels.
const WINDOW: usize = 32;
/// How long the sentinels of one window may take (only a broken setup
/// comes near it).
const TIMEOUT: Duration = Duration::from_secs(5);
/// Receive buffer of each collecting socket: a window's frames and
/// sentinels with room to spare.
const RECEIVE_BUFFER: usize = 4 << 20;
/// Largest frame received whole.
const MAX_FRAME: usize = 65536;

/// What nft's netdev ingress did with one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Every ingress chain of the ruleset let it through.
    Accept,
    /// A chain dropped it (a `drop` verdict or policy, or a statement
    /// that took it away, such as `fwd` to a device the bed does not
    /// watch, or `fwd` to a device whose egress chain dropped it).
    Drop,
    /// A chain forwarded it (`fwd to`) out of this device: [`DEVICE`]
    /// (back where it came from) or [`FORWARD_DEVICE`].
    Forward(&'static str),
    /// The kernel freed it before the ingress hook ran (nft never saw it).
    NotReached,
}

/// A network namespace with nftables' view of the device `veth0`; see
/// the [module documentation](self) for how verdicts are observed.
///
/// Dropping it deletes the namespace and with it the ruleset and every
/// device. Rulesets are loaded with the `nft` command, inside the
/// namespace.
#[derive(Debug)]
pub struct NftBed {
    /// On `veth0p`: sends the frames, and collects what `veth0` sends
    /// back (a `fwd to "veth0"`).
    inject: PacketSocket,
    /// The other collectors: what reached the hook, what was accepted,
    /// what was forwarded to `veth1`.
    reached: PacketSocket,
    accepted: PacketSocket,
    forwarded: PacketSocket,
    /// The bed's sentinel frames.
    sentinels: Sentinels,
    /// Exchanges so far, to tell this exchange's sentinels from older ones.
    exchanges: u32,
    /// A program in front of netfilter may forward frames (see
    /// [`NftBed::program_in_front`]).
    front: bool,
    device: Link,
    /// Dropped last: deleting it removes everything above.
    ns: Netns,
}

/// The devices of a bed, as pairs (the first in each pair named in nft).
const PAIRS: [(&str, &str); 4] = [
    (DEVICE, DEVICE_PEER),
    (FORWARD_DEVICE, FORWARD_PEER),
    ACCEPTED,
    REACHED,
];

impl NftBed {
    /// Whether the beds can run here: the privileges of
    /// [`crate::privileged`] and an `nft` that runs. When they cannot,
    /// fails under CI and otherwise prints why `what` is skipped (as
    /// [`crate::skip`] does) and returns `false`.
    pub fn available(what: &str) -> bool {
        if !crate::privileged(what) {
            return false;
        }
        match cmd::run(nft_program(), &["--version"], None, None) {
            Ok(_) => true,
            Err(e) => {
                crate::skip(&format!("{what} needs nft (Debian's nftables): {e}"));
                false
            }
        }
    }

    /// A fresh namespace with the devices and sockets of the bed and no
    /// ruleset: until [`load`](Self::load), every frame is accepted.
    pub fn new() -> Result<NftBed> {
        let ns = Netns::new()?;
        ns.run(no_rps)??;
        let names: Vec<(String, String)> = PAIRS
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let pairs = link::create_veths(&ns, &names, None)?;
        let collector = |link: &Link| -> Result<PacketSocket> {
            let mut sock = link.socket()?;
            let context = |what: &str| format!("cannot set {what} on {}", link.name);
            sock.set_incoming_only(true)
                .map_err(|e| Error::io(context("incoming-only"), e))?;
            sock.set_receive_buffer(RECEIVE_BUFFER)
                .map_err(|e| Error::io(context("the receive buffer"), e))?;
            Ok(sock)
        };
        let mut random = crate::random::bytes::<12>()?;
        // Locally administered unicast addresses.
        random[0] = (random[0] & 0xfc) | 0x02;
        random[6] = (random[6] & 0xfc) | 0x02;
        let bed = NftBed {
            inject: collector(&pairs[0].b)?,
            forwarded: collector(&pairs[1].b)?,
            accepted: collector(&pairs[2].b)?,
            reached: collector(&pairs[3].b)?,
            sentinels: Sentinels {
                src: random[..6].try_into().expect("6 bytes"),
                dst: random[6..].try_into().expect("6 bytes"),
            },
            exchanges: 0,
            front: false,
            device: pairs[0].a.clone(),
            ns,
        };
        bed.copy_sentinels()?;
        bed.load_own()?;
        Ok(bed)
    }

    /// Says whether a program attached to [`DEVICE`] in front of
    /// netfilter (XDP, tcx) decides instead of nft: then a frame forwarded
    /// without reaching netfilter's hook is [`Outcome::Forward`] (the
    /// program redirected it), not an error, and a frame the program
    /// dropped is [`Outcome::NotReached`].
    pub fn program_in_front(&mut self, front: bool) {
        self.front = front;
    }

    /// The namespace (to add devices, run commands in it, ...).
    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    /// The device the rulesets hook, `veth0`.
    pub fn device(&self) -> &Link {
        &self.device
    }

    /// Runs `nft args...` inside the namespace and returns its stdout.
    pub fn nft(&self, args: &[&str]) -> Result<String> {
        self.nft_in(args, None, None)
    }

    /// Replaces the ruleset with `ruleset` (text in nft's syntax, read by
    /// `nft -f -` from the current directory), keeping the bed's own
    /// table. See [`load_file`](Self::load_file) for the conditions.
    pub fn load(&self, ruleset: &str) -> Result<()> {
        self.replace(|| self.nft_in(&["-f", "-"], Some(ruleset), None))
    }

    /// Replaces the ruleset with the file `path`, loaded by `nft -f` from
    /// the file's directory (so that `include "./..."` finds its files).
    ///
    /// When the load fails, the bed is left with no ruleset (every frame
    /// accepted), ready for the next load.
    ///
    /// The ruleset's ingress chains must hook `veth0` at a priority
    /// strictly between -2147483648 and 2147483647, the bed's own first
    /// and last chains' (the kernel orders hooks of equal priority by when
    /// they were registered). It may forward to `veth0` and `veth1`, not
    /// to the bed's other devices. A file that breaks these rules is
    /// refused with [`Error::Invalid`]; one nft refuses gives
    /// [`Error::Command`] with nft's message.
    pub fn load_file(&self, path: &Path) -> Result<()> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        let file = match dir {
            Some(_) => path.file_name().map(Path::new).unwrap_or(path),
            None => path,
        };
        let file = file
            .to_str()
            .ok_or_else(|| Error::Invalid(format!("{} is not UTF-8", path.display())))?;
        self.replace(|| self.nft_in(&["-f", file], None, dir))
    }

    /// The counters and named quotas of the ruleset (not the bed's own),
    /// from `nft -j list ruleset`.
    pub fn counters(&self) -> Result<Counters> {
        let listing = self.nft(&["-j", "list", "ruleset"])?;
        Counters::from_json(&listing, TABLE).map_err(|detail| Error::Parse {
            command: "nft -j list ruleset".into(),
            detail,
        })
    }

    /// Sends `frames` one after the other into `veth0` and returns, for
    /// each, whether nft's ingress accepted it (see [`outcomes`](Self::outcomes)).
    pub fn verdicts<F: AsRef<[u8]> + Sync>(&mut self, frames: &[F]) -> Result<Vec<bool>> {
        Ok(self
            .outcomes(frames)?
            .into_iter()
            .map(|o| o == Outcome::Accept)
            .collect())
    }

    /// Sends `frames` one after the other into `veth0` and returns what
    /// nft's ingress did with each.
    ///
    /// Frames must be 14 bytes or longer (a packet socket sends nothing
    /// shorter) and fit the veth's MTU of 1,500 bytes (plus 14 for the
    /// Ethernet header, plus 4 if the outer tag is 802.1Q); others give
    /// [`Error::Invalid`]. Stateful statements (counters, `limit`,
    /// `quota`) see the frames in this order.
    pub fn outcomes<F: AsRef<[u8]> + Sync>(&mut self, frames: &[F]) -> Result<Vec<Outcome>> {
        for (i, f) in frames.iter().enumerate() {
            let f = f.as_ref();
            // A packet socket allows 4 bytes more for an 802.1Q tag only.
            let tag = if f.get(12..14) == Some(&[0x81, 0x00]) {
                4
            } else {
                0
            };
            let max = 1514 + tag;
            if f.len() < 14 || f.len() > max {
                return Err(Error::Invalid(format!(
                    "frame {i} has {} bytes; a packet socket on a veth sends 14 to {max}",
                    f.len()
                )));
            }
        }
        self.exchanges = self.exchanges.wrapping_add(1);
        let bed = &*self;
        std::thread::scope(|s| {
            let worker = s.spawn(|| bed.exchange(frames));
            match worker.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Runs nft in the namespace, from `dir` if given.
    fn nft_in(&self, args: &[&str], stdin: Option<&str>, dir: Option<&Path>) -> Result<String> {
        self.ns.run(|| cmd::run(nft_program(), args, stdin, dir))?
    }

    /// Flushes the ruleset, runs `load`, adds the bed's table; on failure,
    /// leaves the bed's table alone in place.
    fn replace(&self, load: impl FnOnce() -> Result<String>) -> Result<()> {
        self.nft(&["flush", "ruleset"])?;
        match load().and_then(|_| self.load_own()) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.nft(&["flush", "ruleset"])?;
                self.load_own()?;
                Err(e)
            }
        }
    }

    /// Has tc copy the sentinels arriving at `veth0` to every collector
    /// before netfilter's ingress hook runs: mirrored to the collectors
    /// of what reached the hook, what was accepted and what was forwarded
    /// to `veth1`, and redirected back out of `veth0`. Taken at tc's
    /// ingress, the sentinels never meet the ruleset, and their copies
    /// skip netfilter's egress hooks (the kernel sets `nf_skip_egress`
    /// during tc ingress), so egress chains see none of them either.
    fn copy_sentinels(&self) -> Result<()> {
        let mac = |m: &Mac| {
            m.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        };
        let (src, dst) = (mac(&self.sentinels.src), mac(&self.sentinels.dst));
        let ethertype = format!("{SENTINEL_TYPE:#06x}");
        let ns = self.ns.name();
        let mut filter = vec![
            "-n", ns, "filter", "add", "dev", DEVICE, "ingress", "protocol", &ethertype, "pref",
            "1", "u32", "match", "ether", "src", &src, "match", "ether", "dst", &dst,
        ];
        for dev in [REACHED.0, ACCEPTED.0, FORWARD_DEVICE] {
            filter.extend(["action", "mirred", "egress", "mirror", "dev", dev]);
        }
        filter.extend(["action", "mirred", "egress", "redirect", "dev", DEVICE]);
        cmd::run(
            "tc",
            &["-n", ns, "qdisc", "add", "dev", DEVICE, "clsact"],
            None,
            None,
        )?;
        cmd::run("tc", &filter, None, None)?;
        Ok(())
    }

    /// Adds the bed's own table and checks that the ruleset leaves it
    /// working.
    fn load_own(&self) -> Result<()> {
        let table = format!(
            "table netdev {TABLE} {{\n\
             \tchain first {{\n\
             \t\ttype filter hook ingress device \"{DEVICE}\" priority {}; policy accept;\n\
             \t\tdup to \"{}\"\n\
             \t}}\n\
             \tchain last {{\n\
             \t\ttype filter hook ingress device \"{DEVICE}\" priority {}; policy accept;\n\
             \t\tfwd to \"{}\"\n\
             \t}}\n\
             }}\n",
            i32::MIN,
            REACHED.0,
            i32::MAX,
            ACCEPTED.0,
        );
        self.nft_in(&["-f", "-"], Some(&table), None)?;
        let listing = self.nft(&["-j", "list", "ruleset"])?;
        check_ruleset(&listing).map_err(|detail| match detail {
            Check::Refused(why) => Error::Invalid(why),
            Check::Unreadable(detail) => Error::Parse {
                command: "nft -j list ruleset".into(),
                detail,
            },
        })
    }

    /// Sends the frames with their sentinels and collects, on the current
    /// thread (pinned to one CPU from here on).
    fn exchange<F: AsRef<[u8]>>(&self, frames: &[F]) -> Result<Vec<Outcome>> {
        let cpu = pin_to_current_cpu()?;
        let backlog_drops = softnet_dropped(cpu);
        let exchange = self.exchanges;
        let mut collectors = [
            Collector::new(&self.reached, REACHED.1, None),
            Collector::new(&self.accepted, ACCEPTED.1, Some(Outcome::Accept)),
            Collector::new(
                &self.forwarded,
                FORWARD_PEER,
                Some(Outcome::Forward(FORWARD_DEVICE)),
            ),
            Collector::new(&self.inject, DEVICE_PEER, Some(Outcome::Forward(DEVICE))),
        ];
        for c in &collectors {
            // Forget drops of earlier exchanges.
            c.sock
                .drops()
                .map_err(|e| Error::io(format!("cannot read drops on {}", c.name), e))?;
        }
        let n = u32::try_from(frames.len())
            .map_err(|_| Error::Invalid("more than 2^32 frames".into()))?;
        let send = |frame: &[u8]| {
            self.inject
                .send(frame)
                .map_err(|e| Error::io(format!("cannot send on {DEVICE_PEER}"), e))
        };
        // Sentinel 0 fences off anything left from an earlier exchange;
        // sentinel k follows frame k - 1.
        send(&self.sentinels.frame(exchange, 0))?;
        let mut buf = vec![0u8; MAX_FRAME];
        let mut next = 0u32;
        while next < n {
            let end = (next + WINDOW as u32).min(n);
            for k in next..end {
                send(frames[k as usize].as_ref())?;
                send(&self.sentinels.frame(exchange, k + 1))?;
            }
            for c in &mut collectors {
                c.collect_until(end, &self.sentinels, exchange, &mut buf)?;
            }
            next = end;
        }
        for c in &collectors {
            let dropped = c
                .sock
                .drops()
                .map_err(|e| Error::io(format!("cannot read drops on {}", c.name), e))?;
            if dropped > 0 {
                return Err(Error::Unexplained(format!(
                    "the socket collecting on {} dropped {dropped} frames",
                    c.name
                )));
            }
        }
        if let (Some(before), Some(after)) = (backlog_drops, softnet_dropped(cpu))
            && after != before
        {
            return Err(Error::Unexplained(format!(
                "CPU {cpu}'s backlog dropped {} frames during the exchange (other traffic?)",
                after.wrapping_sub(before)
            )));
        }
        let mut outcomes = Vec::with_capacity(frames.len());
        for (k, frame) in frames.iter().enumerate() {
            let expected = as_collected(frame.as_ref());
            let mut outcome = None;
            for c in &collectors {
                let got = &c.got[k];
                if got.len() > 1 || got.first().is_some_and(|g| *g != expected) {
                    return Err(Error::Unexplained(format!(
                        "frame {k} ({}) came to {} as {}",
                        hex(frame.as_ref()),
                        c.name,
                        got.iter().map(|g| hex(g)).collect::<Vec<_>>().join(" and "),
                    )));
                }
                if got.is_empty() {
                    continue;
                }
                match (c.outcome, outcome) {
                    (None, _) => {}
                    (Some(o), None) => outcome = Some(o),
                    (Some(o), Some(earlier)) => {
                        return Err(Error::Unexplained(format!(
                            "frame {k} was both {earlier:?} and {o:?}"
                        )));
                    }
                }
            }
            let reached = !collectors[0].got[k].is_empty();
            outcomes.push(match (reached, outcome) {
                (true, Some(o)) => o,
                (true, None) => Outcome::Drop,
                (false, None) => Outcome::NotReached,
                (false, Some(o @ Outcome::Forward(_))) if self.front => o,
                (false, Some(o)) => {
                    return Err(Error::Unexplained(format!(
                        "frame {k} was {o:?} without reaching the hook"
                    )));
                }
            });
        }
        Ok(outcomes)
    }
}

/// The frames that separate the frames sent: from `src` to `dst` (random
/// per bed), EtherType 0x88b5, a text, then the exchange's number and the
/// sentinel's, 32 bits each.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sentinels {
    src: Mac,
    dst: Mac,
}

impl Sentinels {
    /// What sentinels say before their numbers.
    const TEXT: &[u8; 20] = b"testbed nft sentinel";

    /// The sentinel numbered `index` of exchange `exchange`.
    fn frame(&self, exchange: u32, index: u32) -> Vec<u8> {
        let mut payload = Self::TEXT.to_vec();
        payload.extend_from_slice(&exchange.to_be_bytes());
        payload.extend_from_slice(&index.to_be_bytes());
        crate::frame::pad60(crate::frame::ethernet(
            self.dst,
            self.src,
            &[],
            SENTINEL_TYPE,
            &payload,
        ))
    }

    /// The exchange and index of `frame` if it is one of these sentinels.
    fn read(&self, frame: &[u8]) -> Option<(u32, u32)> {
        let ours = frame.len() >= 42
            && frame[..6] == self.dst
            && frame[6..12] == self.src
            && frame[12..14] == SENTINEL_TYPE.to_be_bytes()
            && frame[14..34] == Self::TEXT[..];
        if !ours {
            return None;
        }
        let word = |at: usize| u32::from_be_bytes(frame[at..at + 4].try_into().expect("4 bytes"));
        Some((word(34), word(38)))
    }
}

/// One collecting socket and what it received per frame.
struct Collector<'a> {
    sock: &'a PacketSocket,
    name: &'static str,
    /// What its frames mean; `None` for the copy of what reached the hook.
    outcome: Option<Outcome>,
    /// The sentinel expected next.
    next: u32,
    /// Frames received since the last sentinel.
    pending: Vec<Vec<u8>>,
    /// Per frame sent, the frames received for it.
    got: Vec<Vec<Vec<u8>>>,
}

impl<'a> Collector<'a> {
    fn new(sock: &'a PacketSocket, name: &'static str, outcome: Option<Outcome>) -> Self {
        Collector {
            sock,
            name,
            outcome,
            next: 0,
            pending: Vec::new(),
            got: Vec::new(),
        }
    }

    /// Receives until sentinel `last` of `exchange` came in, sorting
    /// frames by the sentinels around them.
    fn collect_until(
        &mut self,
        last: u32,
        sentinels: &Sentinels,
        exchange: u32,
        buf: &mut [u8],
    ) -> Result<()> {
        let deadline = Instant::now() + TIMEOUT;
        while self.next <= last {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(len) = self
                .sock
                .recv(buf, left)
                .map_err(|e| Error::io(format!("cannot receive on {}", self.name), e))?
            else {
                return Err(Error::Unexplained(format!(
                    "sentinel {} did not come to {} within {TIMEOUT:?}",
                    self.next, self.name
                )));
            };
            let frame = &buf[..len];
            match sentinels.read(frame) {
                Some((e, index)) if e == exchange => {
                    if index != self.next {
                        return Err(Error::Unexplained(format!(
                            "sentinel {index} came to {} while {} was expected",
                            self.name, self.next
                        )));
                    }
                    let pending = std::mem::take(&mut self.pending);
                    // Before sentinel 0: leftovers of an earlier exchange.
                    if index > 0 {
                        self.got.push(pending);
                    }
                    self.next += 1;
                }
                // A sentinel of an earlier exchange.
                Some(_) => {}
                None if self.next > 0 => self.pending.push(frame.to_vec()),
                None => {}
            }
        }
        Ok(())
    }
}

/// Why a listing does not fit the bed.
enum Check {
    Refused(String),
    Unreadable(String),
}

/// The only member of an object of one member (the shape of nft's JSON
/// listing, `{"rule": {...}}`): its key and value.
pub(crate) fn single(v: &Value) -> Option<(&str, &Value)> {
    match v.as_object() {
        Some(members) if members.len() == 1 => members.iter().next().map(|(k, v)| (k.as_str(), v)),
        _ => None,
    }
}

/// Checks a `nft -j list ruleset` listing: the bed's table is whole, no
/// other ingress chain runs at its chains' priorities, and nothing
/// forwards or duplicates to the bed's own devices.
fn check_ruleset(listing: &str) -> std::result::Result<(), Check> {
    let doc: Value = serde_json::from_str(listing).map_err(|e| Check::Unreadable(e.to_string()))?;
    let items = doc
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or_else(|| Check::Unreadable("no `nftables` array".into()))?;
    let internal = [
        DEVICE_PEER,
        FORWARD_PEER,
        ACCEPTED.0,
        ACCEPTED.1,
        REACHED.0,
        REACHED.1,
    ];
    let (mut own_chains, mut own_rules) = (0, 0);
    for item in items {
        let Some((kind, body)) = single(item) else {
            continue;
        };
        let own = body.get("table").and_then(Value::as_str) == Some(TABLE);
        match kind {
            "chain" if own => own_chains += 1,
            "rule" if own => own_rules += 1,
            "chain" => {
                let hook = body.get("hook").and_then(Value::as_str);
                let prio = body.get("prio").and_then(Value::as_i64);
                let extreme = [i64::from(i32::MIN), i64::from(i32::MAX)];
                if hook == Some("ingress") && prio.is_some_and(|p| extreme.contains(&p)) {
                    let name = body.get("name").and_then(Value::as_str).unwrap_or("?");
                    return Err(Check::Refused(format!(
                        "chain {name} hooks ingress at priority {}, where the oracle's own \
                         chains run (use a priority strictly between {} and {})",
                        prio.unwrap_or_default(),
                        i32::MIN,
                        i32::MAX
                    )));
                }
            }
            "rule" => {
                for expr in body
                    .get("expr")
                    .and_then(Value::as_array)
                    .map_or(&[][..], Vec::as_slice)
                {
                    let Some((stmt @ ("fwd" | "dup"), arg)) = single(expr) else {
                        continue;
                    };
                    let dev = arg.get("dev").and_then(Value::as_str);
                    if let Some(dev) = dev.filter(|d| internal.contains(d)) {
                        return Err(Check::Refused(format!(
                            "`{stmt} to \"{dev}\"`: {dev} is one of the oracle's own devices \
                             (forward to {DEVICE} or {FORWARD_DEVICE})"
                        )));
                    }
                }
            }
            _ => {}
        }
    }
    if (own_chains, own_rules) != (2, 2) {
        return Err(Check::Refused(format!(
            "the ruleset changed the oracle's table {TABLE}"
        )));
    }
    Ok(())
}

/// A frame as the collectors receive it: the outer VLAN tag, moved into
/// metadata on the way in, is not in the data a packet socket reads.
fn as_collected(frame: &[u8]) -> Vec<u8> {
    let tagged = matches!(frame.get(12..14), Some([0x81, 0x00] | [0x88, 0xa8]));
    if tagged && frame.len() >= 18 {
        [&frame[..12], &frame[16..]].concat()
    } else {
        frame.to_vec()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `nft` to run: Debian's in /usr/sbin, else whatever `PATH` finds.
pub fn nft_program() -> &'static str {
    if Path::new("/usr/sbin/nft").exists() {
        "/usr/sbin/nft"
    } else {
        "nft"
    }
}

/// Turns off RPS for devices created later in the current thread's
/// namespace (a kernel without the setting has none).
fn no_rps() -> Result<()> {
    let path = "/proc/sys/net/core/rps_default_mask";
    match std::fs::write(path, "0") {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("cannot write {path}"), e)),
    }
}

/// Pins the current thread to the CPU it runs on; returns that CPU.
fn pin_to_current_cpu() -> Result<usize> {
    use rustix::thread::{CpuSet, sched_getaffinity, sched_getcpu, sched_setaffinity};
    let allowed =
        sched_getaffinity(None).map_err(|e| Error::io("cannot read the CPU affinity", e.into()))?;
    let here = sched_getcpu();
    let cpu = if allowed.is_set(here) {
        here
    } else {
        (0..CpuSet::MAX_CPU)
            .find(|&c| allowed.is_set(c))
            .ok_or_else(|| Error::Invalid("no CPU allowed".into()))?
    };
    let mut only = CpuSet::new();
    only.set(cpu);
    sched_setaffinity(None, &only)
        .map_err(|e| Error::io(format!("cannot pin the thread to CPU {cpu}"), e.into()))?;
    Ok(cpu)
}

/// Frames CPU `cpu`'s backlog has dropped since boot (the second column
/// of /proc/net/softnet_stat), if the file says.
fn softnet_dropped(cpu: usize) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/softnet_stat").ok()?;
    text.lines().enumerate().find_map(|(row, line)| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        // Since Linux 5.10 the 13th column is the CPU; before, the row.
        let id = match cols.get(12) {
            Some(c) => usize::from_str_radix(c, 16).ok()?,
            None => row,
        };
        (id == cpu)
            .then(|| u64::from_str_radix(cols.get(1)?, 16).ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outer_tag_is_not_collected() {
        let untagged = [1u8; 20];
        assert_eq!(as_collected(&untagged), untagged.to_vec());
        let mut tagged = vec![2u8; 12];
        tagged.extend_from_slice(&[0x88, 0xa8, 0, 10, 0x81, 0, 0, 20, 8, 0, 0x45]);
        let mut expected = vec![2u8; 12];
        expected.extend_from_slice(&[0x81, 0, 0, 20, 8, 0, 0x45]);
        assert_eq!(as_collected(&tagged), expected);
        // Too short to lose its tag: the kernel frees it instead.
        let short = [&[3u8; 12][..], &[0x81, 0, 0, 1]].concat();
        assert_eq!(as_collected(&short), short);
    }

    #[test]
    fn listings_that_break_the_oracle_are_refused() {
        let own = format!(
            r#"{{"chain": {{"table": "{TABLE}", "name": "first"}}}},
               {{"chain": {{"table": "{TABLE}", "name": "last"}}}},
               {{"rule": {{"table": "{TABLE}", "chain": "first", "expr": []}}}},
               {{"rule": {{"table": "{TABLE}", "chain": "last", "expr": []}}}}"#
        );
        let with = |extra: &str| format!(r#"{{"nftables": [{own}{extra}]}}"#);
        assert!(check_ruleset(&with("")).is_ok());
        let fine =
            r#", {"rule": {"table": "t", "chain": "c", "expr": [{"fwd": {"dev": "veth1"}}]}}"#;
        assert!(check_ruleset(&with(fine)).is_ok());
        for bad in [
            r#", {"rule": {"table": "t", "chain": "c", "expr": [{"fwd": {"dev": "veth0p"}}]}}"#,
            r#", {"rule": {"table": "t", "chain": "c", "expr": [{"dup": {"dev": "nftacc"}}]}}"#,
            r#", {"chain": {"table": "t", "name": "c", "hook": "ingress", "prio": -2147483648}}"#,
            r#", {"chain": {"table": "t", "name": "c", "hook": "ingress", "prio": 2147483647}}"#,
            r#", {"rule": {"table": "testbed_oracle", "chain": "last", "expr": []}}"#,
        ] {
            assert!(
                matches!(check_ruleset(&with(bad)), Err(Check::Refused(_))),
                "{bad}"
            );
        }
        assert!(matches!(check_ruleset("[]"), Err(Check::Unreadable(_))));
    }

    #[test]
    fn sentinels_are_read_back_and_only_ours() {
        let ours = Sentinels {
            src: [2, 1, 1, 1, 1, 1],
            dst: [2, 2, 2, 2, 2, 2],
        };
        let frame = ours.frame(7, 9);
        assert_eq!(frame.len(), 60);
        assert_eq!(ours.read(&frame), Some((7, 9)));
        let other = Sentinels {
            src: [2, 1, 1, 1, 1, 3],
            ..ours.clone()
        };
        assert_eq!(other.read(&frame), None);
        let mut changed = frame.clone();
        changed[20] ^= 1;
        assert_eq!(ours.read(&changed), None);
        assert_eq!(ours.read(&frame[..41]), None);
    }

    #[test]
    fn softnet_stat_has_a_row_for_cpu_0() {
        if Path::new("/proc/net/softnet_stat").exists() {
            assert!(softnet_dropped(0).is_some());
        }
    }
}
