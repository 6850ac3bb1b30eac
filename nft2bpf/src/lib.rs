//! nft2bpf: nftables' ruleset language for the netdev family, read and
//! checked as `nft -f` reads and checks it, compiled to XDP and tcx
//! programs that give nft's verdict on every packet.
//!
//! Pipeline, one folder a stage: [`syntax`] (scanner and parser, with
//! `include` and `define`), [`check`] (nft's semantic checks, the refusal
//! by name of what cannot run before the stack, and the resolution of
//! every match to header bytes and constants: the [`check::tree`] that
//! lowering reads), [`compile`] (the base chains of one hook and device
//! lowered to a `pktmatch` IR with nft's meaning, [`compile::lower`], and
//! built into a program with its maps, [`compile::program::build`]), and
//! [`deploy`] (load, attach and pin programs, read their counters and
//! logs back, unload). Errors carry spans; a [`SourceMap`] turns them into
//! `FILE:LINE:COL` with the source line and a caret.
//!
//! ```
//! use nft2bpf::SourceMap;
//! use nft2bpf::compile::program::{Mode, ProgramOptions, build};
//! use nft2bpf::compile::{Attach, Device, Outcome};
//! use nft2bpf::syntax::MemLoader;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut map = SourceMap::new();
//! let text = r#"
//! table netdev filter {
//!     chain ingress {
//!         type filter hook ingress device "eth0" priority 0; policy drop;
//!         tcp dport { 22, 80 } counter accept
//!     }
//! }
//! "#;
//! let file = map.add("fw.nft", None, text, None);
//! let ruleset = nft2bpf::check_ruleset(&mut map, file, &mut MemLoader::new())?;
//! // The ingress chains of eth0, as an XDP program.
//! let lowered = nft2bpf::compile::lower(&ruleset, Attach::Xdp, &Device::named("eth0"))?;
//! let program = build(&lowered, &ProgramOptions::new(Mode::Hook))?;
//! println!("{}", program.object.listing(program.prog)?);
//! // The interpreter gives each packet's decision: an ARP frame meets the
//! // policy.
//! let mut arp = [0u8; 60];
//! arp[12..14].copy_from_slice(&[0x08, 0x06]);
//! let v = lowered.run(&arp, 60, &mut |_| true);
//! assert_eq!(lowered.decisions[v.0 as usize].outcome, Outcome::Drop);
//! # Ok(()) }
//! ```
//!
//! ```
//! use nft2bpf::SourceMap;
//! use nft2bpf::check::tree::{CmpOp, Source, Stmt, Test};
//! use nft2bpf::syntax::MemLoader;
//!
//! # fn main() -> Result<(), nft2bpf::Errors> {
//! let mut map = SourceMap::new();
//! let text = r#"
//! table netdev filter {
//!     chain ingress {
//!         type filter hook ingress device "eth0" priority 0; policy drop;
//!         tcp dport { 22, 80 } accept
//!     }
//! }
//! "#;
//! let file = map.add("fw.nft", None, text, None);
//! // `MemLoader` holds the files `include` may read (none here);
//! // `FsLoader` reads them from disk.
//! let ruleset = nft2bpf::check_ruleset(&mut map, file, &mut MemLoader::new())?;
//! let (_, chain, base) = ruleset.base_chains().next().unwrap();
//! assert_eq!((chain.name.as_str(), base.devices.as_slice()), ("ingress", &["eth0".to_string()][..]));
//!
//! // The rule: nft's own dependency (`meta l4proto tcp`), the set
//! // lookup, the verdict.
//! let rule = &ruleset.rules[chain.rules[0]];
//! let Stmt::Match(dep) = &rule.stmts[0] else { unreachable!() };
//! assert!(dep.implied);
//! assert_eq!(dep.test, Test::Cmp { op: CmpOp::Eq, value: 6 });
//! let Stmt::Match(m) = &rule.stmts[1] else { unreachable!() };
//! let Source::Field(field) = m.key.parts[0].source else { unreachable!() };
//! let load = field.load(); // bytes 2-3 of the transport header
//! assert_eq!((load.offset, load.len), (2, 2));
//! let Test::InSet { set, negated: false } = m.test else { unreachable!() };
//! assert_eq!(ruleset.sets[set].elements.len(), 2);
//!
//! // A mistake, as a compiler reports it.
//! let bad = map.add("bad.nft", None, "table netdev t {\n\tchain c { ip saddr tcp; }\n}\n", None);
//! let errors = nft2bpf::check_ruleset(&mut map, bad, &mut MemLoader::new()).unwrap_err();
//! assert_eq!(
//!     errors.render(&map),
//!     "bad.nft:2:21: error: datatype mismatch, expected IPv4 address, expression has type Internet protocol\n\
//!      \tchain c { ip saddr tcp; }\n\
//!      \t                   ^~~\n"
//! );
//! # Ok(()) }
//! ```

//!
//! # Where nft2bpf and nft differ
//!
//! The tests load every ruleset of `tests/rulesets` into nft 1.0.6 to
//! keep the two in step; what differs on purpose:
//!
//! - Constructs that cannot run at XDP and tcx hooks, or that nft2bpf
//!   does not implement, are refused by name: see [`check::refuse`].
//! - Names are resolved from fixed tables, never from the host: protocol
//!   and service names ([`check::types`]), no DNS for host names.
//! - `include` reads relative paths from the including file's directory
//!   (nft: from its include path, `/etc/nftables`, or for `./` and `../`
//!   from the working directory); wildcards are not expanded; an include
//!   cycle is an error of its own (nft stops at its depth limit, 16).
//! - Expressions nest at most 64 parentheses and braces deep, and their
//!   trees at most 256 nodes high ([`syntax::parser`]).
//! - nft reserves its keywords (`all`, `devices`, ...) and will not take
//!   them as names; nft2bpf reads keywords by context and does.
//! - `ether saddr` takes a MAC address only (nft also reads `1.2.3.4` as
//!   a link-layer address).
//! - `log prefix` longer than 127 bytes is an error (nft 1.0.6 crashes).
//! - One extension nft lacks: `pcap "EXPR"`, a tcpdump filter as a match
//!   ([`check::tree::PcapMatch`]), with libpcap's meaning for the hook
//!   the program runs at (as `pcap2bpf` compiles it); a filter that reads
//!   past the packet anywhere does not match, and the next rule runs.
//!   Names in the filter (hosts, services) come from this machine's
//!   `/etc` files, as tcpdump's do.

#![warn(missing_docs)]

pub mod check;
pub mod compile;
pub mod deploy;
pub mod error;
pub mod source;
pub mod syntax;

pub use error::{Error, Errors};
pub use source::{FileId, SourceMap};

/// Parses and checks the file `file` of `map` (its includes are read
/// through `loader` and added to `map`): the checked ruleset, or every
/// error (a syntax error stops at the first).
pub fn check_ruleset(
    map: &mut SourceMap,
    file: FileId,
    loader: &mut dyn syntax::Loader,
) -> Result<check::Ruleset, Errors> {
    let ast = syntax::parse(map, file, loader)?;
    check::check(&ast)
}
