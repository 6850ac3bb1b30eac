//! pcap2bpf: tcpdump filter expressions (pcap-filter(7)) with libpcap's
//! exact meaning. This is the front end: scanner, parser, name resolution
//! and libpcap's semantic checks.

pub mod ast;
pub mod capture;
pub mod check;
pub mod error;
pub mod lexer;
pub mod parser;
pub mod resolve;
pub mod samples;
pub mod summary;

pub use ast::{Expr, Span};
pub use check::{Atom, Checked};
pub use error::CompileError;
pub use resolve::{Resolver, Tables};

/// Link-layer types the compiler targets (libpcap DLT names in comments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// DLT_EN10MB: Ethernet.
    En10mb,
    /// DLT_RAW: raw IPv4/IPv6.
    Raw,
    /// DLT_LINUX_SLL: Linux cooked capture v1.
    LinuxSll,
    /// DLT_LINUX_SLL2: Linux cooked capture v2.
    LinuxSll2,
    /// DLT_NULL: BSD loopback (host-order address family).
    Null,
    /// DLT_LOOP: OpenBSD loopback (network-order address family).
    Loop,
}

/// A parsed and checked filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The link type it was checked for.
    pub link: LinkType,
    /// The syntax tree; `None` for the empty expression (accept all).
    pub ast: Option<Expr>,
    /// The checked tree with names resolved; `None` accepts all.
    pub checked: Option<Checked>,
}

/// Options beyond the link type.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    /// The link type.
    pub link: LinkType,
    /// Where names are looked up.
    pub resolver: &'a dyn Resolver,
    /// The IPv4 netmask of the capture interface (`ip broadcast` needs it).
    pub netmask: Option<u32>,
}

/// Parses and checks `expr` for `link`, resolving names with `resolver`.
pub fn parse(expr: &str, link: LinkType, resolver: &dyn Resolver) -> Result<Filter, CompileError> {
    parse_with(
        expr,
        Options {
            link,
            resolver,
            netmask: None,
        },
    )
}

/// Parses and checks `expr` with the names of this machine's `/etc` files.
pub fn parse_system(expr: &str, link: LinkType) -> Result<Filter, CompileError> {
    parse(expr, link, &Tables::system())
}

/// Like [`parse`], with all options.
pub fn parse_with(expr: &str, opts: Options<'_>) -> Result<Filter, CompileError> {
    let ast = parser::parse_expr(expr)?;
    let checked = match &ast {
        Some(e) => Some(check::Checker::new(opts.link, opts.resolver, opts.netmask).check(e)?),
        None => None,
    };
    Ok(Filter {
        link: opts.link,
        ast,
        checked,
    })
}
