//! The scanner: libpcap's `scanner.l` token classes with flex's rule
//! (longest match; on a tie the earlier rule wins).
//!
//! Each token class is a small "regular expression" evaluated as the set of
//! end positions it can reach, so longest match is exact even for the IPv6
//! and MAC forms.

use nom::IResult;
use nom::Parser;
use nom::branch::alt;
use nom::bytes::complete::{tag, take_while};
use nom_locate::LocatedSpan;

use crate::ast::Span;
use crate::error::CompileError;

type In<'a> = LocatedSpan<&'a str>;

/// A scanner token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// A keyword, by canonical spelling (`ether` -> `link`, `&&` -> `and`).
    Kw(&'static str),
    /// A number (also the named constants such as `tcp-syn`).
    Num(u32),
    /// A dotted IPv4-ish number with 2..4 parts.
    Hid(String),
    /// An IPv6 address that parsed.
    Hid6(std::net::Ipv6Addr),
    /// A MAC address.
    Eid([u8; 6]),
    /// An ARCnet address.
    Aid(String),
    /// A name.
    Id(String),
    /// Punctuation: `+ - * / % : [ ] ! < > ( ) & | ^ =` and `>= <= != << >>`.
    Sym(&'static str),
}

/// A token and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// Its bytes in the expression.
    pub span: Span,
}

/// Keywords with their canonical names, as in scanner.l.
const KEYWORDS: &[(&str, &str)] = &[
    ("dst", "dst"),
    ("src", "src"),
    ("link", "link"),
    ("ether", "link"),
    ("ppp", "link"),
    ("slip", "link"),
    ("fddi", "link"),
    ("tr", "link"),
    ("wlan", "link"),
    ("arp", "arp"),
    ("rarp", "rarp"),
    ("ip", "ip"),
    ("sctp", "sctp"),
    ("tcp", "tcp"),
    ("udp", "udp"),
    ("icmp", "icmp"),
    ("igmp", "igmp"),
    ("igrp", "igrp"),
    ("pim", "pim"),
    ("vrrp", "vrrp"),
    ("carp", "carp"),
    ("radio", "radio"),
    ("ip6", "ip6"),
    ("icmp6", "icmp6"),
    ("ah", "ah"),
    ("esp", "esp"),
    ("atalk", "atalk"),
    ("aarp", "aarp"),
    ("decnet", "decnet"),
    ("lat", "lat"),
    ("sca", "sca"),
    ("moprc", "moprc"),
    ("mopdl", "mopdl"),
    ("iso", "iso"),
    ("esis", "esis"),
    ("es-is", "esis"),
    ("isis", "isis"),
    ("is-is", "isis"),
    ("l1", "l1"),
    ("l2", "l2"),
    ("iih", "iih"),
    ("lsp", "lsp"),
    ("snp", "snp"),
    ("csnp", "csnp"),
    ("psnp", "psnp"),
    ("clnp", "clnp"),
    ("stp", "stp"),
    ("ipx", "ipx"),
    ("netbeui", "netbeui"),
    ("host", "host"),
    ("net", "net"),
    ("mask", "mask"),
    ("port", "port"),
    ("portrange", "portrange"),
    ("proto", "proto"),
    ("protochain", "protochain"),
    ("gateway", "gateway"),
    ("type", "type"),
    ("subtype", "subtype"),
    ("direction", "dir"),
    ("dir", "dir"),
    ("address1", "addr1"),
    ("addr1", "addr1"),
    ("address2", "addr2"),
    ("addr2", "addr2"),
    ("address3", "addr3"),
    ("addr3", "addr3"),
    ("address4", "addr4"),
    ("addr4", "addr4"),
    ("ra", "ra"),
    ("ta", "ta"),
    ("less", "less"),
    ("greater", "greater"),
    ("byte", "byte"),
    ("broadcast", "broadcast"),
    ("multicast", "multicast"),
    ("and", "and"),
    ("&&", "and"),
    ("or", "or"),
    ("||", "or"),
    ("not", "not"),
    ("len", "len"),
    ("length", "len"),
    ("inbound", "inbound"),
    ("outbound", "outbound"),
    ("ifindex", "ifindex"),
    ("vlan", "vlan"),
    ("mpls", "mpls"),
    ("pppoed", "pppoed"),
    ("pppoes", "pppoes"),
    ("geneve", "geneve"),
    ("lane", "lane"),
    ("llc", "llc"),
    ("metac", "metac"),
    ("bcc", "bcc"),
    ("oam", "oam"),
    ("oamf4", "oamf4"),
    ("oamf4ec", "oamf4ec"),
    ("oamf4sc", "oamf4sc"),
    ("sc", "sc"),
    ("ilmic", "ilmic"),
    ("vpi", "vpi"),
    ("vci", "vci"),
    ("connectmsg", "connectmsg"),
    ("metaconnect", "metaconnect"),
    ("on", "ifname"),
    ("ifname", "ifname"),
    ("rset", "rset"),
    ("ruleset", "rset"),
    ("rnr", "rnr"),
    ("rulenum", "rnr"),
    ("srnr", "srnr"),
    ("subrulenum", "srnr"),
    ("reason", "reason"),
    ("action", "action"),
    ("fisu", "fisu"),
    ("lssu", "lssu"),
    ("lsu", "lssu"),
    ("msu", "msu"),
    ("hfisu", "hfisu"),
    ("hlssu", "hlssu"),
    ("hmsu", "hmsu"),
    ("sio", "sio"),
    ("opc", "opc"),
    ("dpc", "dpc"),
    ("sls", "sls"),
    ("hsio", "hsio"),
    ("hopc", "hopc"),
    ("hdpc", "hdpc"),
    ("hsls", "hsls"),
];

/// Named constants the scanner turns into numbers.
const CONSTANTS: &[(&str, u32)] = &[
    ("icmptype", 0),
    ("icmpcode", 1),
    ("icmp-echoreply", 0),
    ("icmp-unreach", 3),
    ("icmp-sourcequench", 4),
    ("icmp-redirect", 5),
    ("icmp-echo", 8),
    ("icmp-routeradvert", 9),
    ("icmp-routersolicit", 10),
    ("icmp-timxceed", 11),
    ("icmp-paramprob", 12),
    ("icmp-tstamp", 13),
    ("icmp-tstampreply", 14),
    ("icmp-ireq", 15),
    ("icmp-ireqreply", 16),
    ("icmp-maskreq", 17),
    ("icmp-maskreply", 18),
    ("icmp6type", 0),
    ("icmp6code", 1),
    ("icmp6-destinationunreach", 1),
    ("icmp6-packettoobig", 2),
    ("icmp6-timeexceeded", 3),
    ("icmp6-parameterproblem", 4),
    ("icmp6-echo", 128),
    ("icmp6-echoreply", 129),
    ("icmp6-multicastlistenerquery", 130),
    ("icmp6-multicastlistenerreportv1", 131),
    ("icmp6-multicastlistenerdone", 132),
    ("icmp6-routersolicit", 133),
    ("icmp6-routeradvert", 134),
    ("icmp6-neighborsolicit", 135),
    ("icmp6-neighboradvert", 136),
    ("icmp6-redirect", 137),
    ("icmp6-routerrenum", 138),
    ("icmp6-nodeinformationquery", 139),
    ("icmp6-nodeinformationresponse", 140),
    ("icmp6-ineighbordiscoverysolicit", 141),
    ("icmp6-ineighbordiscoveryadvert", 142),
    ("icmp6-multicastlistenerreportv2", 143),
    ("icmp6-homeagentdiscoveryrequest", 144),
    ("icmp6-homeagentdiscoveryreply", 145),
    ("icmp6-mobileprefixsolicit", 146),
    ("icmp6-mobileprefixadvert", 147),
    ("icmp6-certpathsolicit", 148),
    ("icmp6-certpathadvert", 149),
    ("icmp6-multicastrouteradvert", 151),
    ("icmp6-multicastroutersolicit", 152),
    ("icmp6-multicastrouterterm", 153),
    ("tcpflags", 13),
    ("tcp-fin", 0x01),
    ("tcp-syn", 0x02),
    ("tcp-rst", 0x04),
    ("tcp-push", 0x08),
    ("tcp-ack", 0x10),
    ("tcp-urg", 0x20),
    ("tcp-ece", 0x40),
    ("tcp-cwr", 0x80),
];

/// Splits `src` into tokens.
pub fn tokenize(src: &str) -> Result<Vec<Token>, CompileError> {
    let mut input = In::new(src);
    let mut out = Vec::new();
    loop {
        // Blanks separate tokens and are otherwise ignored.
        let (rest, _) = blanks(input).map_err(|_| lex_error(src, input.location_offset()))?;
        input = rest;
        if input.fragment().is_empty() {
            return Ok(out);
        }
        let start = input.location_offset();
        let (len, tok) = longest(src, start)?;
        out.push(Token {
            tok,
            span: Span::new(start, start + len),
        });
        // `len` ends on a char boundary: every token class is ASCII except
        // the backslash name and the one-char error, both handled below.
        let (rest, _) = nom::bytes::complete::take::<_, _, nom::error::Error<In>>(
            src[start..start + len].chars().count(),
        )(input)
        .map_err(|_| lex_error(src, start))?;
        input = rest;
    }
}

fn blanks(i: In) -> IResult<In, In> {
    take_while(|c| matches!(c, ' ' | '\r' | '\n' | '\t'))(i)
}

fn lex_error(src: &str, at: usize) -> CompileError {
    let end = src[at..].chars().next().map_or(at, |c| at + c.len_utf8());
    CompileError::new("syntax error: unexpected character", Span::new(at, end))
}

/// Punctuation, longest first (scanner.l: the two-char operators win).
fn symbol(i: In) -> IResult<In, &'static str> {
    alt((
        alt((
            tag(">=").map(|_| ">="),
            tag("<=").map(|_| "<="),
            tag("!=").map(|_| "!="),
            tag("==").map(|_| "="),
            tag("<<").map(|_| "<<"),
            tag(">>").map(|_| ">>"),
        )),
        alt((
            tag("+").map(|_| "+"),
            tag("-").map(|_| "-"),
            tag("*").map(|_| "*"),
            tag("/").map(|_| "/"),
            tag("%").map(|_| "%"),
            tag(":").map(|_| ":"),
            tag("[").map(|_| "["),
            tag("]").map(|_| "]"),
            tag("!").map(|_| "!"),
            tag("<").map(|_| "<"),
            tag(">").map(|_| ">"),
            tag("(").map(|_| "("),
            tag(")").map(|_| ")"),
            tag("&").map(|_| "&"),
            tag("|").map(|_| "|"),
            tag("^").map(|_| "^"),
            tag("=").map(|_| "="),
        )),
    ))
    .parse(i)
}

/// The rules of scanner.l in order; the index breaks ties.
fn longest(src: &str, at: usize) -> Result<(usize, Tok), CompileError> {
    let b = src.as_bytes();
    let mut best: Option<(usize, usize)> = None; // (len, rule)
    let mut consider = |len: usize, rule: usize| {
        if len > 0 && best.is_none_or(|(l, _)| len > l) {
            best = Some((len, rule));
        }
    };
    // 0: keywords (including `&&`, `||`).
    let kw = KEYWORDS
        .iter()
        .filter(|(k, _)| b[at..].starts_with(k.as_bytes()))
        .max_by_key(|(k, _)| k.len());
    if let Some((k, _)) = kw {
        consider(k.len(), 0);
    }
    // 1: punctuation.
    let sym = symbol(In::new(&src[at..])).ok().map(|(_, s)| s);
    if let Some(s) = sym {
        // "==" is 2 bytes but canonicalised to "=".
        let len = if src[at..].starts_with("==") {
            2
        } else {
            s.len()
        };
        consider(len, 1);
    }
    // 2: `$B` ARCnet address.
    if b.get(at) == Some(&b'$') {
        consider(max_end(&hex(b, &[at + 1], 1, 2)).saturating_sub(at), 2);
    }
    // 3: MAC address; 4: number; 5: dotted number; 6: IPv6; 7: bogus MAC.
    consider(max_end(&mac(b, at)).saturating_sub(at), 3);
    consider(max_end(&num(b, &[at])).saturating_sub(at), 4);
    consider(max_end(&hid(b, at)).saturating_sub(at), 5);
    consider(max_end(&v6(b, at)).saturating_sub(at), 6);
    consider(max_end(&bogus_mac(b, at)).saturating_sub(at), 7);
    // 8: named constants.
    let konst = CONSTANTS
        .iter()
        .filter(|(k, _)| b[at..].starts_with(k.as_bytes()))
        .max_by_key(|(k, _)| k.len());
    if let Some((k, _)) = konst {
        consider(k.len(), 8);
    }
    // 9: name; 10: backslash name.
    consider(id_len(b, at), 9);
    if b[at] == b'\\' {
        let n = src[at + 1..]
            .char_indices()
            .find(|&(_, c)| matches!(c, ' ' | '!' | '(' | ')' | '\n' | '\t'))
            .map_or(src.len() - at - 1, |(i, _)| i);
        if n > 0 {
            consider(n + 1, 10);
        }
    }
    let Some((len, rule)) = best else {
        return Err(lex_error(src, at));
    };
    let text = &src[at..at + len];
    let span = Span::new(at, at + len);
    let tok = match rule {
        0 => Tok::Kw(kw.map(|(_, c)| *c).unwrap_or("and")),
        1 => Tok::Sym(sym.unwrap_or("=")),
        2 => Tok::Aid(text.to_string()),
        3 => Tok::Eid(parse_mac(text)),
        4 => Tok::Num(stou(text).map_err(|m| CompileError::new(m, span))?),
        5 => Tok::Hid(text.to_string()),
        6 => match text.parse::<std::net::Ipv6Addr>() {
            Ok(a) => Tok::Hid6(a),
            Err(_) => {
                return Err(CompileError::new(
                    format!("bogus IPv6 address {text}"),
                    span,
                ));
            }
        },
        7 => {
            return Err(CompileError::new(
                format!("bogus ethernet address {text}"),
                span,
            ));
        }
        8 => Tok::Num(konst.map_or(0, |(_, v)| *v)),
        9 => Tok::Id(text.to_string()),
        _ => Tok::Id(text[1..].to_string()),
    };
    Ok((len, tok))
}

fn max_end(ends: &[usize]) -> usize {
    ends.iter().copied().max().unwrap_or(0)
}

fn is_hex(c: Option<&u8>) -> bool {
    c.is_some_and(|c| c.is_ascii_hexdigit())
}

/// Ends after `min..=max` hex digits from each start.
fn hex(b: &[u8], starts: &[usize], min: usize, max: usize) -> Vec<usize> {
    let mut out = Vec::new();
    for &s in starts {
        let mut n = 0;
        while n < max && is_hex(b.get(s + n)) {
            n += 1;
            if n >= min {
                out.push(s + n);
            }
        }
    }
    dedup(out)
}

fn lit(b: &[u8], starts: &[usize], c: u8) -> Vec<usize> {
    dedup(
        starts
            .iter()
            .filter(|&&s| b.get(s) == Some(&c))
            .map(|s| s + 1)
            .collect(),
    )
}

fn dedup(mut v: Vec<usize>) -> Vec<usize> {
    v.sort_unstable();
    v.dedup();
    v
}

/// `N`: `[0-9]+|(0X|0x)[0-9A-Fa-f]+`.
fn num(b: &[u8], starts: &[usize]) -> Vec<usize> {
    let mut out = Vec::new();
    for &s in starts {
        let mut n = 0;
        while b.get(s + n).is_some_and(u8::is_ascii_digit) {
            n += 1;
            out.push(s + n);
        }
        if b.get(s) == Some(&b'0') && matches!(b.get(s + 1), Some(b'x' | b'X')) {
            out.extend(hex(b, &[s + 2], 1, usize::MAX));
        }
    }
    dedup(out)
}

/// `N.N`, `N.N.N` or `N.N.N.N`.
fn hid(b: &[u8], at: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut cur = num(b, &[at]);
    for _ in 0..3 {
        cur = num(b, &lit(b, &cur, b'.'));
        out.extend_from_slice(&cur);
    }
    dedup(out)
}

fn dotted_quad(b: &[u8], starts: &[usize]) -> Vec<usize> {
    let mut cur = num(b, starts);
    for _ in 0..3 {
        cur = num(b, &lit(b, &cur, b'.'));
    }
    cur
}

/// `k` groups of 1..4 hex digits separated by ':' (`k` may be 0).
fn groups(b: &[u8], starts: &[usize], k: usize) -> Vec<usize> {
    if k == 0 {
        return starts.to_vec();
    }
    let mut cur = hex(b, starts, 1, 4);
    for _ in 1..k {
        cur = hex(b, &lit(b, &cur, b':'), 1, 4);
    }
    cur
}

/// The `V6` alternatives of scanner.l.
fn v6(b: &[u8], at: usize) -> Vec<usize> {
    let mut out = Vec::new();
    out.extend(groups(b, &[at], 8));
    let six = groups(b, &[at], 6);
    out.extend(dotted_quad(b, &lit(b, &six, b':')));
    for k in 0..=7 {
        let before = groups(b, &[at], k);
        let dc = lit(b, &lit(b, &before, b':'), b':');
        if dc.is_empty() {
            continue;
        }
        for m in 0..=(7 - k) {
            let after = groups(b, &dc, m);
            out.extend_from_slice(&after);
            if k + m <= 5 {
                let tail = if m == 0 { after } else { lit(b, &after, b':') };
                out.extend(dotted_quad(b, &tail));
            }
        }
    }
    dedup(out)
}

/// The `MAC` alternatives of scanner.l.
fn mac(b: &[u8], at: usize) -> Vec<usize> {
    let mut out = Vec::new();
    for sep in [b':', b'-', b'.'] {
        let mut cur = hex(b, &[at], 1, 2);
        for _ in 0..5 {
            cur = hex(b, &lit(b, &cur, sep), 1, 2);
        }
        out.extend(cur);
    }
    let mut cur = hex(b, &[at], 4, 4);
    for _ in 0..2 {
        cur = hex(b, &lit(b, &cur, b'.'), 4, 4);
    }
    out.extend(cur);
    out.extend(hex(b, &hex(b, &hex(b, &[at], 4, 4), 4, 4), 4, 4));
    dedup(out)
}

/// `{B}:+({B}:+)+`.
fn bogus_mac(b: &[u8], at: usize) -> Vec<usize> {
    let colons = |starts: Vec<usize>| {
        let mut out = Vec::new();
        for s in starts {
            let mut n = 0;
            while b.get(s + n) == Some(&b':') {
                n += 1;
                out.push(s + n);
            }
        }
        dedup(out)
    };
    let mut cur = colons(hex(b, &[at], 1, 2));
    let mut out = Vec::new();
    // One or more further `B:+` groups; bounded by the input length.
    while !cur.is_empty() {
        cur = colons(hex(b, &cur, 1, 2));
        out.extend_from_slice(&cur);
    }
    dedup(out)
}

/// `[A-Za-z0-9]([-_.A-Za-z0-9]*[.A-Za-z0-9])?`.
fn id_len(b: &[u8], at: usize) -> usize {
    if !b[at].is_ascii_alphanumeric() {
        return 0;
    }
    let mut end = at + 1;
    let mut best = end;
    while end < b.len() && (b[end].is_ascii_alphanumeric() || matches!(b[end], b'-' | b'_' | b'.'))
    {
        end += 1;
        if b[end - 1] != b'-' && b[end - 1] != b'_' {
            best = end;
        }
    }
    best - at
}

/// Like libpcap's `pcap_ether_aton` on a well-formed MAC token.
fn parse_mac(s: &str) -> [u8; 6] {
    let b = s.as_bytes();
    let mut out = [0u8; 6];
    let (mut i, mut n) = (0, 0);
    while i < b.len() && n < 6 {
        if matches!(b[i], b':' | b'.' | b'-') {
            i += 1;
        }
        let mut d = hexval(b[i]);
        i += 1;
        if i < b.len() && b[i].is_ascii_hexdigit() {
            d = (d << 4) | hexval(b[i]);
            i += 1;
        }
        out[n] = d;
        n += 1;
    }
    out
}

fn hexval(c: u8) -> u8 {
    (c as char).to_digit(16).unwrap_or(0) as u8
}

/// libpcap's `stou`: decimal, `0x` hex or leading-0 octal, 32 bits.
pub fn stou(s: &str) -> Result<u32, String> {
    let overflow = || format!("number {s} overflows 32 bits");
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        if s.bytes().any(|c| c == b'8' || c == b'9') {
            return Err(format!("number {s} contains non-octal digit"));
        }
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    let mut n: u32 = 0;
    for c in digits.chars() {
        let d = c.to_digit(radix).ok_or_else(overflow)?;
        n = n
            .checked_mul(radix)
            .and_then(|n| n.checked_add(d))
            .ok_or_else(overflow)?;
    }
    Ok(n)
}
