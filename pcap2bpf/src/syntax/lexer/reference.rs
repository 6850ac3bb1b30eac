//! The scanner as it was first written: every rule of scanner.l is
//! evaluated as the set of end positions it can reach. Slow but plainly
//! exact; the tests check the fast scanner against it.

use super::{Tok, id_len, parse_mac, stou};
use crate::error::CompileError;
use crate::syntax::ast::Span;

/// Keywords with their canonical names, as in scanner.l.
pub const KEYWORDS: &[(&str, &str)] = &[
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
pub const CONSTANTS: &[(&str, u32)] = &[
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

/// Punctuation, longest first (scanner.l: the two-char operators win).
fn symbol(s: &str) -> Option<&'static str> {
    const SYMS: &[(&str, &str)] = &[
        (">=", ">="),
        ("<=", "<="),
        ("!=", "!="),
        ("==", "="),
        ("<<", "<<"),
        (">>", ">>"),
        ("+", "+"),
        ("-", "-"),
        ("*", "*"),
        ("/", "/"),
        ("%", "%"),
        (":", ":"),
        ("[", "["),
        ("]", "]"),
        ("!", "!"),
        ("<", "<"),
        (">", ">"),
        ("(", "("),
        (")", ")"),
        ("&", "&"),
        ("|", "|"),
        ("^", "^"),
        ("=", "="),
    ];
    SYMS.iter().find(|(t, _)| s.starts_with(t)).map(|(_, c)| *c)
}

/// The rules of scanner.l in order; the index breaks ties.
pub fn longest(src: &str, at: usize) -> Result<(usize, Tok), CompileError> {
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
    let sym = symbol(&src[at..]);
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
        return Err(super::lex_error(src, at));
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
