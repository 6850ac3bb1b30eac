//! The scanner: libpcap's `scanner.l` token classes with flex's rule
//! (longest match; on a tie the earlier rule wins).
//!
//! Each token class is matched by a greedy scan that returns the longest
//! match of that class; the classes are then compared in scanner.l's order.
//! Greedy is exact here: wherever a class's pattern could stop early and go
//! on with a separator (`.`, `:`, `-`), the early stop is followed by a
//! digit, never by the separator, so only the longest run can continue.
//! Only the classes that can start with the first character are tried.

use crate::error::CompileError;
use crate::syntax::ast::Span;

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

/// Splits `src` into tokens.
pub fn tokenize(src: &str) -> Result<Vec<Token>, CompileError> {
    let b = src.as_bytes();
    // A token takes at least two bytes but for the shortest ones; this
    // is rarely short and never wasteful.
    let mut out = Vec::with_capacity(b.len() / 3 + 1);
    let mut at = 0;
    loop {
        // Blanks separate tokens and are otherwise ignored.
        while at < b.len() && matches!(b[at], b' ' | b'\r' | b'\n' | b'\t') {
            at += 1;
        }
        if at == b.len() {
            return Ok(out);
        }
        let (len, tok) = longest(src, at)?;
        out.push(Token {
            tok,
            span: Span::new(at, at + len),
        });
        // `len` ends on a char boundary: every token class is ASCII except
        // the backslash name, which stops before an ASCII byte or at the end.
        at += len;
    }
}

fn lex_error(src: &str, at: usize) -> CompileError {
    let end = src[at..].chars().next().map_or(at, |c| at + c.len_utf8());
    CompileError::new("syntax error: unexpected character", Span::new(at, end))
}

/// Punctuation at the start of `b` with its length; the two-char
/// operators win (scanner.l), `==` is `=`, `&&` and `||` are keywords.
fn punct(b: &[u8]) -> Option<(usize, Tok)> {
    let two = match (b[0], b.get(1).copied()) {
        (b'>', Some(b'=')) => Some(Tok::Sym(">=")),
        (b'<', Some(b'=')) => Some(Tok::Sym("<=")),
        (b'!', Some(b'=')) => Some(Tok::Sym("!=")),
        (b'=', Some(b'=')) => Some(Tok::Sym("=")),
        (b'<', Some(b'<')) => Some(Tok::Sym("<<")),
        (b'>', Some(b'>')) => Some(Tok::Sym(">>")),
        (b'&', Some(b'&')) => Some(Tok::Kw("and")),
        (b'|', Some(b'|')) => Some(Tok::Kw("or")),
        _ => None,
    };
    if let Some(t) = two {
        return Some((2, t));
    }
    let s = match b[0] {
        b'+' => "+",
        b'-' => "-",
        b'*' => "*",
        b'/' => "/",
        b'%' => "%",
        b':' => ":",
        b'[' => "[",
        b']' => "]",
        b'!' => "!",
        b'<' => "<",
        b'>' => ">",
        b'(' => "(",
        b')' => ")",
        b'&' => "&",
        b'|' => "|",
        b'^' => "^",
        b'=' => "=",
        _ => return None,
    };
    Some((1, Tok::Sym(s)))
}

/// The longest token at `at` (not a blank), by scanner.l's rules in order:
/// 0 keywords, 1 punctuation, 2 `$B` ARCnet address, 3 MAC address,
/// 4 number, 5 dotted number, 6 IPv6, 7 bogus MAC, 8 named constants,
/// 9 name, 10 backslash name.
fn longest(src: &str, at: usize) -> Result<(usize, Tok), CompileError> {
    let b = src.as_bytes();
    let c = b[at];
    if c.is_ascii_alphanumeric() {
        return word(src, at);
    }
    match c {
        b'$' => {
            // Nothing else starts with `$`.
            let n = hex_run(b, at + 1, 2);
            if n == 0 {
                return Err(lex_error(src, at));
            }
            Ok((n + 1, Tok::Aid(src[at..at + n + 1].to_string())))
        }
        b'\\' => {
            let n = src[at + 1..]
                .bytes()
                .position(|c| matches!(c, b' ' | b'!' | b'(' | b')' | b'\n' | b'\t'))
                .unwrap_or(src.len() - at - 1);
            if n == 0 {
                return Err(lex_error(src, at));
            }
            Ok((n + 1, Tok::Id(src[at + 1..at + 1 + n].to_string())))
        }
        b':' => {
            // `::...` is an IPv6 address (rule 6) and longer than `:`.
            let n = v6_len(b, at);
            if n > 1 {
                return v6_token(src, at, n);
            }
            punct(&b[at..]).ok_or_else(|| lex_error(src, at))
        }
        _ => punct(&b[at..]).ok_or_else(|| lex_error(src, at)),
    }
}

/// A token that starts with a letter or digit: a keyword, an address, a
/// number, a named constant or a name.
fn word(src: &str, at: usize) -> Result<(usize, Tok), CompileError> {
    let b = src.as_bytes();
    // Keywords and constants are names themselves (letters, digits and
    // inner `-`), so they never outrun the name rule.
    let id = id_len(b, at);
    let (mut mac, mut num, mut hid, mut v6, mut bogus) = (0, 0, 0, 0, 0);
    // Addresses and numbers are made of hex digits, `x` (of `0x`) and the
    // separators alone: a name that runs past those is longer than any
    // of them (`and`, `arp`, `ether`), so they need no scan.
    let addr = if b[at].is_ascii_hexdigit() {
        b[at..]
            .iter()
            .take_while(|c| c.is_ascii_hexdigit() || matches!(c, b'x' | b'X' | b':' | b'.' | b'-'))
            .count()
    } else {
        0
    };
    if addr > 0 && addr >= id {
        mac = mac_len(b, at);
        num = num_end(b, at).map_or(0, |e| e - at);
        hid = hid_len(b, at);
        // Every IPv6 and bogus MAC form has a colon (numbers do not).
        if b[at..at + addr].contains(&b':') {
            v6 = v6_len(b, at);
            bogus = bogus_mac_len(b, at);
        }
    }
    let len = id.max(mac).max(num).max(hid).max(v6).max(bogus);
    let text = &src[at..at + len];
    let span = Span::new(at, at + len);
    let tok = if let Some(k) = keyword(text) {
        Tok::Kw(k)
    } else if mac == len {
        Tok::Eid(parse_mac(text))
    } else if num == len {
        Tok::Num(stou(text).map_err(|m| CompileError::new(m, span))?)
    } else if hid == len {
        Tok::Hid(text.to_string())
    } else if v6 == len {
        return v6_token(src, at, len);
    } else if bogus == len {
        return Err(CompileError::new(
            format!("bogus ethernet address {text}"),
            span,
        ));
    } else if let Some(k) = constant(text) {
        Tok::Num(k)
    } else {
        Tok::Id(text.to_string())
    };
    Ok((len, tok))
}

fn v6_token(src: &str, at: usize, len: usize) -> Result<(usize, Tok), CompileError> {
    let text = &src[at..at + len];
    match text.parse::<std::net::Ipv6Addr>() {
        Ok(a) => Ok((len, Tok::Hid6(a))),
        Err(_) => Err(CompileError::new(
            format!("bogus IPv6 address {text}"),
            Span::new(at, at + len),
        )),
    }
}

/// The canonical name of a keyword (scanner.l's keyword rules).
fn keyword(text: &str) -> Option<&'static str> {
    Some(match text {
        "dst" => "dst",
        "src" => "src",
        "link" => "link",
        "ether" => "link",
        "ppp" => "link",
        "slip" => "link",
        "fddi" => "link",
        "tr" => "link",
        "wlan" => "link",
        "arp" => "arp",
        "rarp" => "rarp",
        "ip" => "ip",
        "sctp" => "sctp",
        "tcp" => "tcp",
        "udp" => "udp",
        "icmp" => "icmp",
        "igmp" => "igmp",
        "igrp" => "igrp",
        "pim" => "pim",
        "vrrp" => "vrrp",
        "carp" => "carp",
        "radio" => "radio",
        "ip6" => "ip6",
        "icmp6" => "icmp6",
        "ah" => "ah",
        "esp" => "esp",
        "atalk" => "atalk",
        "aarp" => "aarp",
        "decnet" => "decnet",
        "lat" => "lat",
        "sca" => "sca",
        "moprc" => "moprc",
        "mopdl" => "mopdl",
        "iso" => "iso",
        "esis" => "esis",
        "es-is" => "esis",
        "isis" => "isis",
        "is-is" => "isis",
        "l1" => "l1",
        "l2" => "l2",
        "iih" => "iih",
        "lsp" => "lsp",
        "snp" => "snp",
        "csnp" => "csnp",
        "psnp" => "psnp",
        "clnp" => "clnp",
        "stp" => "stp",
        "ipx" => "ipx",
        "netbeui" => "netbeui",
        "host" => "host",
        "net" => "net",
        "mask" => "mask",
        "port" => "port",
        "portrange" => "portrange",
        "proto" => "proto",
        "protochain" => "protochain",
        "gateway" => "gateway",
        "type" => "type",
        "subtype" => "subtype",
        "direction" => "dir",
        "dir" => "dir",
        "address1" => "addr1",
        "addr1" => "addr1",
        "address2" => "addr2",
        "addr2" => "addr2",
        "address3" => "addr3",
        "addr3" => "addr3",
        "address4" => "addr4",
        "addr4" => "addr4",
        "ra" => "ra",
        "ta" => "ta",
        "less" => "less",
        "greater" => "greater",
        "byte" => "byte",
        "broadcast" => "broadcast",
        "multicast" => "multicast",
        "and" => "and",
        "or" => "or",
        "not" => "not",
        "len" => "len",
        "length" => "len",
        "inbound" => "inbound",
        "outbound" => "outbound",
        "ifindex" => "ifindex",
        "vlan" => "vlan",
        "mpls" => "mpls",
        "pppoed" => "pppoed",
        "pppoes" => "pppoes",
        "geneve" => "geneve",
        "lane" => "lane",
        "llc" => "llc",
        "metac" => "metac",
        "bcc" => "bcc",
        "oam" => "oam",
        "oamf4" => "oamf4",
        "oamf4ec" => "oamf4ec",
        "oamf4sc" => "oamf4sc",
        "sc" => "sc",
        "ilmic" => "ilmic",
        "vpi" => "vpi",
        "vci" => "vci",
        "connectmsg" => "connectmsg",
        "metaconnect" => "metaconnect",
        "on" => "ifname",
        "ifname" => "ifname",
        "rset" => "rset",
        "ruleset" => "rset",
        "rnr" => "rnr",
        "rulenum" => "rnr",
        "srnr" => "srnr",
        "subrulenum" => "srnr",
        "reason" => "reason",
        "action" => "action",
        "fisu" => "fisu",
        "lssu" => "lssu",
        "lsu" => "lssu",
        "msu" => "msu",
        "hfisu" => "hfisu",
        "hlssu" => "hlssu",
        "hmsu" => "hmsu",
        "sio" => "sio",
        "opc" => "opc",
        "dpc" => "dpc",
        "sls" => "sls",
        "hsio" => "hsio",
        "hopc" => "hopc",
        "hdpc" => "hdpc",
        "hsls" => "hsls",
        _ => return None,
    })
}

/// The value of a named constant the scanner turns into a number.
fn constant(text: &str) -> Option<u32> {
    Some(match text {
        "icmptype" => 0,
        "icmpcode" => 1,
        "icmp-echoreply" => 0,
        "icmp-unreach" => 3,
        "icmp-sourcequench" => 4,
        "icmp-redirect" => 5,
        "icmp-echo" => 8,
        "icmp-routeradvert" => 9,
        "icmp-routersolicit" => 10,
        "icmp-timxceed" => 11,
        "icmp-paramprob" => 12,
        "icmp-tstamp" => 13,
        "icmp-tstampreply" => 14,
        "icmp-ireq" => 15,
        "icmp-ireqreply" => 16,
        "icmp-maskreq" => 17,
        "icmp-maskreply" => 18,
        "icmp6type" => 0,
        "icmp6code" => 1,
        "icmp6-destinationunreach" => 1,
        "icmp6-packettoobig" => 2,
        "icmp6-timeexceeded" => 3,
        "icmp6-parameterproblem" => 4,
        "icmp6-echo" => 128,
        "icmp6-echoreply" => 129,
        "icmp6-multicastlistenerquery" => 130,
        "icmp6-multicastlistenerreportv1" => 131,
        "icmp6-multicastlistenerdone" => 132,
        "icmp6-routersolicit" => 133,
        "icmp6-routeradvert" => 134,
        "icmp6-neighborsolicit" => 135,
        "icmp6-neighboradvert" => 136,
        "icmp6-redirect" => 137,
        "icmp6-routerrenum" => 138,
        "icmp6-nodeinformationquery" => 139,
        "icmp6-nodeinformationresponse" => 140,
        "icmp6-ineighbordiscoverysolicit" => 141,
        "icmp6-ineighbordiscoveryadvert" => 142,
        "icmp6-multicastlistenerreportv2" => 143,
        "icmp6-homeagentdiscoveryrequest" => 144,
        "icmp6-homeagentdiscoveryreply" => 145,
        "icmp6-mobileprefixsolicit" => 146,
        "icmp6-mobileprefixadvert" => 147,
        "icmp6-certpathsolicit" => 148,
        "icmp6-certpathadvert" => 149,
        "icmp6-multicastrouteradvert" => 151,
        "icmp6-multicastroutersolicit" => 152,
        "icmp6-multicastrouterterm" => 153,
        "tcpflags" => 13,
        "tcp-fin" => 0x01,
        "tcp-syn" => 0x02,
        "tcp-rst" => 0x04,
        "tcp-push" => 0x08,
        "tcp-ack" => 0x10,
        "tcp-urg" => 0x20,
        "tcp-ece" => 0x40,
        "tcp-cwr" => 0x80,
        _ => return None,
    })
}

/// How many hex digits, at most `max`, start at `s`.
fn hex_run(b: &[u8], s: usize, max: usize) -> usize {
    b.get(s..)
        .unwrap_or(&[])
        .iter()
        .take(max)
        .take_while(|c| c.is_ascii_hexdigit())
        .count()
}

fn at_is(b: &[u8], i: usize, c: u8) -> bool {
    b.get(i) == Some(&c)
}

/// End of the longest `N` (`[0-9]+|(0X|0x)[0-9A-Fa-f]+`) at `s`.
fn num_end(b: &[u8], s: usize) -> Option<usize> {
    if at_is(b, s, b'0') && matches!(b.get(s + 1), Some(b'x' | b'X')) {
        let h = hex_run(b, s + 2, usize::MAX);
        if h > 0 {
            return Some(s + 2 + h);
        }
    }
    let d = b[s.min(b.len())..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    (d > 0).then_some(s + d)
}

/// `N.N`, `N.N.N` or `N.N.N.N`.
fn hid_len(b: &[u8], at: usize) -> usize {
    let Some(mut end) = num_end(b, at) else {
        return 0;
    };
    let mut best = at;
    for _ in 0..3 {
        match at_is(b, end, b'.').then(|| num_end(b, end + 1)).flatten() {
            Some(e) => {
                end = e;
                best = e;
            }
            None => break,
        }
    }
    best - at
}

/// End of `N.N.N.N` at `s`.
fn dotted_quad(b: &[u8], s: usize) -> Option<usize> {
    let mut end = num_end(b, s)?;
    for _ in 0..3 {
        if !at_is(b, end, b'.') {
            return None;
        }
        end = num_end(b, end + 1)?;
    }
    Some(end)
}

/// End of `k` groups of 1..4 hex digits separated by `:` (`k` may be 0).
fn groups(b: &[u8], s: usize, k: usize) -> Option<usize> {
    let mut end = s;
    for i in 0..k {
        if i > 0 {
            if !at_is(b, end, b':') {
                return None;
            }
            end += 1;
        }
        let h = hex_run(b, end, 4);
        if h == 0 {
            return None;
        }
        end += h;
    }
    Some(end)
}

/// The `V6` alternatives of scanner.l.
fn v6_len(b: &[u8], at: usize) -> usize {
    let mut best = at;
    let mut take = |e: Option<usize>| {
        if let Some(e) = e {
            best = best.max(e);
        }
    };
    take(groups(b, at, 8));
    if let Some(six) = groups(b, at, 6).filter(|&e| at_is(b, e, b':')) {
        take(dotted_quad(b, six + 1));
    }
    for k in 0..=7 {
        let Some(before) = groups(b, at, k) else {
            break;
        };
        if !(at_is(b, before, b':') && at_is(b, before + 1, b':')) {
            continue;
        }
        let dc = before + 2;
        for m in 0..=(7 - k) {
            let Some(after) = groups(b, dc, m) else {
                break;
            };
            take(Some(after));
            if k + m <= 5 {
                if m == 0 {
                    take(dotted_quad(b, after));
                } else if at_is(b, after, b':') {
                    take(dotted_quad(b, after + 1));
                }
            }
        }
    }
    best - at
}

/// The `MAC` alternatives of scanner.l.
fn mac_len(b: &[u8], at: usize) -> usize {
    let mut best = at;
    // Six groups of 1..2 hex digits separated by `:`, `-` or `.`.
    for sep in [b':', b'-', b'.'] {
        let mut end = at;
        let mut ok = true;
        for i in 0..6 {
            if i > 0 {
                if !at_is(b, end, sep) {
                    ok = false;
                    break;
                }
                end += 1;
            }
            let h = hex_run(b, end, 2);
            if h == 0 {
                ok = false;
                break;
            }
            end += h;
        }
        if ok {
            best = best.max(end);
        }
    }
    // Three groups of four hex digits, separated by `.` or not at all.
    let four = |s: usize| (hex_run(b, s, 4) == 4).then_some(s + 4);
    let dotted = four(at)
        .filter(|&e| at_is(b, e, b'.'))
        .and_then(|e| four(e + 1))
        .filter(|&e| at_is(b, e, b'.'))
        .and_then(|e| four(e + 1));
    let plain = four(at).and_then(four).and_then(four);
    for e in [dotted, plain].into_iter().flatten() {
        best = best.max(e);
    }
    best - at
}

/// `{B}:+({B}:+)+`.
fn bogus_mac_len(b: &[u8], at: usize) -> usize {
    let (mut end, mut groups, mut best) = (at, 0, at);
    loop {
        let h = hex_run(b, end, 2);
        if h == 0 {
            break;
        }
        let colons = b[end + h..].iter().take_while(|&&c| c == b':').count();
        if colons == 0 {
            break;
        }
        end += h + colons;
        groups += 1;
        if groups >= 2 {
            best = end;
        }
    }
    best - at
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

#[cfg(test)]
mod reference;

#[cfg(test)]
mod tests {
    use super::{longest, reference, tokenize};

    /// Both scanners at every non-blank position of `s`.
    fn same(s: &str) {
        for (at, c) in s.char_indices() {
            if matches!(c, ' ' | '\r' | '\n' | '\t') {
                continue;
            }
            let fast = longest(s, at).map_err(|e| (e.message, e.span));
            let slow = reference::longest(s, at).map_err(|e| (e.message, e.span));
            assert_eq!(fast, slow, "{s:?} at {at}");
        }
    }

    #[test]
    fn keywords_and_constants_match_the_reference() {
        let names = reference::KEYWORDS
            .iter()
            .map(|(k, _)| *k)
            .chain(reference::CONSTANTS.iter().map(|(k, _)| *k));
        for name in names {
            for suffix in ["", " ", "x", "1", "-", "-a", ".", "_", ":", "(", "6"] {
                same(&format!("{name}{suffix}"));
            }
        }
    }

    #[test]
    fn address_forms_match_the_reference() {
        for s in [
            "10.0.0.1",
            "10.0.0.1.5",
            "1.2",
            "0x1f.3",
            "0x.1",
            "00:11:22:33:44:55",
            "0:1:2:3:4:5:6",
            "aa-bb-cc-dd-ee-ff",
            "a.b.c.d.e.f",
            "0011.2233.4455",
            "001122334455",
            "0011223344556",
            "deadbeefcafe",
            "fe80::1",
            "::",
            "::1",
            ":::",
            "::ffff:1.2.3.4",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:1.2.3.4",
            "1::2:3:4:5:1.2.3.4",
            "1::2:3:4:5:6:1.2.3.4",
            "12345::1",
            "a::b::c",
            "1:::2",
            "a:b::",
            "ab::cd:ef:1:2:3:4:5",
            "1:2",
            "1::::2:3",
            "$1",
            "$12",
            "$123",
            "$",
            "\\name",
            "\\",
            "\\ x",
            "\\é(x",
            "0x",
            "0x12g",
            "09",
            "4294967296",
            "0xffffffff1",
            "a1-",
            "a_b_",
            "x.y.",
            "é",
            "&&||&|==!=>=<=<<>><>",
        ] {
            same(s);
        }
    }

    /// Random strings over the characters the rules care about.
    #[test]
    fn random_strings_match_the_reference() {
        const ALPHABET: &[u8] = b"0123456789abcdefABCDEFxXgz:.-_$\\ &|=<>!()";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..40_000 {
            let len = 1 + (next() % 24) as usize;
            // Lean towards digits, hex letters and separators.
            let s: String = (0..len)
                .map(|_| {
                    let r = next() as usize;
                    let c = if r.is_multiple_of(3) {
                        ALPHABET[r / 3 % ALPHABET.len()]
                    } else {
                        b"0123456789abcdef:.:"[r / 3 % 19]
                    };
                    c as char
                })
                .collect();
            same(&s);
        }
    }

    #[test]
    fn tokenize_splits_on_blanks_and_reports_bad_characters() {
        let toks = tokenize(" tcp\tport\n80 ").unwrap();
        assert_eq!(toks.len(), 3);
        assert_eq!((toks[2].span.start, toks[2].span.end), (10, 12));
        let e = tokenize("tcp @").unwrap_err();
        assert_eq!((e.span.start, e.span.end), (4, 5));
    }
}
