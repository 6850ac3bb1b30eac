//! The scanner: a file's text to [`Token`]s, with nft's rules.
//!
//! As in flex, the longest token wins and a tie goes to the rule listed
//! first in nft's `scanner.l`: operators (`==`, also the words `eq`,
//! `and`, `or`, ...), then addresses, time strings, numbers, quoted
//! strings and words. So `dead::beef` is an address and `deadbeef` a word,
//! `10.0.0.1` an address and `10` a number, `and` the operator `&` and
//! `android` a word. Newlines are tokens (they end statements); `#`
//! starts a comment to the end of the line; a backslash before a newline
//! joins the lines.

use std::net::{Ipv4Addr, Ipv6Addr};

use pktmatch::Span;

use crate::error::Error;
use crate::syntax::token::{AddrLit, Tok, Token};

/// The longest text that can be an address (an IPv6 address with an IPv4
/// tail: `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`).
const MAX_ADDR_LEN: usize = 45;

/// Splits `text`, which starts at position `base`, into tokens; the last
/// is [`Tok::Eof`], at the end of the text.
pub fn tokenize(text: &str, base: usize) -> Result<Vec<Token>, Error> {
    let bytes = text.as_bytes();
    let mut toks = Vec::new();
    let mut at = 0;
    let span = |start: usize, end: usize| Span::new(base + start, base + end);
    while at < bytes.len() {
        let c = bytes[at];
        match c {
            b' ' | b'\t' | b'\r' => {
                at += 1;
                continue;
            }
            b'\n' => {
                toks.push(Token {
                    tok: Tok::Newline,
                    span: span(at, at + 1),
                });
                at += 1;
                continue;
            }
            b'\\' if bytes.get(at + 1) == Some(&b'\n') => {
                at += 2;
                continue;
            }
            b'#' => {
                at += text[at..].find('\n').unwrap_or(text.len() - at);
                continue;
            }
            b'"' => {
                let Some(len) = text[at + 1..].find('"') else {
                    return Err(Error::new("unterminated string", span(at, at + 1)));
                };
                toks.push(Token {
                    tok: Tok::Quoted(text[at + 1..at + 1 + len].to_string()),
                    span: span(at, at + len + 2),
                });
                at += len + 2;
                continue;
            }
            _ => {}
        }
        let (tok, len) = plain(&text[at..])
            .or_else(|| longest(&text[at..]))
            .ok_or_else(|| {
                let ch = text[at..].chars().next().unwrap_or(' ');
                Error::new(
                    format!(
                        "syntax error, unexpected character '{}'",
                        ch.escape_default()
                    ),
                    span(at, at + ch.len_utf8()),
                )
            })?;
        toks.push(Token {
            tok,
            span: span(at, at + len),
        });
        at += len;
    }
    toks.push(Token {
        tok: Tok::Eof,
        span: span(text.len(), text.len()),
    });
    Ok(toks)
}

/// The token at the start of `s` when it is one of the few a large set
/// is made of (a `,`, a brace, a decimal number, an IPv4 address) and no
/// other rule could read a longer one there: what [`longest`] finds,
/// without trying every rule.
fn plain(s: &str) -> Option<(Tok, usize)> {
    let b = s.as_bytes();
    let tok = match *b.first()? {
        b',' => Tok::Comma,
        b'{' => Tok::LBrace,
        b'}' => Tok::RBrace,
        b'0'..=b'9' => return plain_number_or_ipv4(s),
        _ => return None,
    };
    Some((tok, 1))
}

/// [`plain`] of a decimal number or an IPv4 address: digits and dots up
/// to a byte that neither an address (hex digits, `:`, `.`), a time
/// string, a hex number nor a word (letters) could go on with.
fn plain_number_or_ipv4(s: &str) -> Option<(Tok, usize)> {
    let b = s.as_bytes();
    let len = b
        .iter()
        .take_while(|c| c.is_ascii_digit() || **c == b'.')
        .count();
    let next = b.get(len).copied().unwrap_or(b' ');
    if len > MAX_ADDR_LEN || next.is_ascii_alphanumeric() || next == b':' || next == b'_' {
        return None;
    }
    let text = &s[..len];
    if !text.contains('.') {
        return Some((number(text), len));
    }
    // The whole run is the longest address there can be; a run that is
    // no address is left to `longest` (a shorter address inside it).
    let addr = text.parse::<Ipv4Addr>().ok()?;
    Some((Tok::Addr(AddrLit::Ipv4(addr)), len))
}

/// The longest token at the start of `s` and its length, by nft's rules
/// (see the module's docs).
fn longest(s: &str) -> Option<(Tok, usize)> {
    let mut best: Option<(Tok, usize)> = operator(s);
    let mut consider = |cand: Option<(Tok, usize)>| {
        if let Some((tok, len)) = cand
            && best.as_ref().is_none_or(|(_, l)| len > *l)
        {
            best = Some((tok, len));
        }
    };
    // nft's scanner has these two words among its keywords.
    for w in ["8021ad", "8021q"] {
        if s.starts_with(w) {
            consider(Some((Tok::Word(w.to_string()), w.len())));
        }
    }
    consider(address(s).map(|(a, n)| (Tok::Addr(a), n)));
    consider(time_string(s).map(|n| (Tok::Word(s[..n].to_string()), n)));
    consider(number_len(s).map(|n| (number(&s[..n]), n)));
    consider(word_len(s).map(|n| (Tok::Word(s[..n].to_string()), n)));
    // Words that are operators: the operator rule comes first in nft.
    if let Some((Tok::Word(w), n)) = &best
        && let Some(op) = word_operator(w)
    {
        best = Some((op, *n));
    }
    best
}

/// Punctuation.
fn operator(s: &str) -> Option<(Tok, usize)> {
    const TWO: [(&str, Tok); 6] = [
        ("==", Tok::EqEq),
        ("!=", Tok::NotEq),
        ("<=", Tok::Le),
        (">=", Tok::Ge),
        ("<<", Tok::Shl),
        (">>", Tok::Shr),
    ];
    for (text, tok) in TWO {
        if s.starts_with(text) {
            return Some((tok, 2));
        }
    }
    let tok = match s.as_bytes().first()? {
        b'<' => Tok::Lt,
        b'>' => Tok::Gt,
        b',' => Tok::Comma,
        b'.' => Tok::Dot,
        b':' => Tok::Colon,
        b';' => Tok::Semi,
        b'{' => Tok::LBrace,
        b'}' => Tok::RBrace,
        b'(' => Tok::LParen,
        b')' => Tok::RParen,
        b'^' => Tok::Caret,
        b'&' => Tok::Amp,
        b'|' => Tok::Pipe,
        b'!' => Tok::Bang,
        b'/' => Tok::Slash,
        b'-' => Tok::Dash,
        b'*' => Tok::Star,
        b'@' => Tok::At,
        b'$' => Tok::Dollar,
        b'=' => Tok::Assign,
        b'+' => Tok::Plus,
        _ => return None,
    };
    Some((tok, 1))
}

/// The words nft's scanner reads as operators.
fn word_operator(w: &str) -> Option<Tok> {
    Some(match w {
        "eq" => Tok::EqEq,
        "ne" => Tok::NotEq,
        "le" => Tok::Le,
        "lt" => Tok::Lt,
        "ge" => Tok::Ge,
        "gt" => Tok::Gt,
        "lshift" => Tok::Shl,
        "rshift" => Tok::Shr,
        "xor" => Tok::Caret,
        "and" => Tok::Amp,
        "or" => Tok::Pipe,
        "not" => Tok::Bang,
        _ => return None,
    })
}

/// nft's `string`: `[A-Za-z_.][A-Za-z0-9/_.-]*`.
fn word_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if !(b.first()?.is_ascii_alphabetic() || b[0] == b'_' || b[0] == b'.') {
        return None;
    }
    let rest = b[1..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'-' | b'_' | b'.'))
        .count();
    Some(1 + rest)
}

/// nft's `numberstring`: decimal digits, or `0x` and hex digits.
fn number_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.len() > 2 && b[0] == b'0' && (b[1] | 0x20) == b'x' && b[2].is_ascii_hexdigit() {
        return Some(2 + b[2..].iter().take_while(|c| c.is_ascii_hexdigit()).count());
    }
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    (n > 0).then_some(n)
}

/// A number token; as in nft, a word when it does not fit in 64 bits
/// (the checks then say what they expected).
fn number(s: &str) -> Tok {
    let v = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    };
    v.map_or_else(|| Tok::Word(s.to_string()), Tok::Number)
}

/// nft's `timestring`: `([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?`,
/// when it is longer than the number alone.
fn time_string(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut at = 0;
    for unit in ["d", "h", "m", "s", "ms"] {
        let digits = b[at..].iter().take_while(|c| c.is_ascii_digit()).count();
        let rest = &s[at + digits..];
        // `1ms` is milliseconds, not a minute and a stray `s`.
        if digits > 0 && rest.starts_with(unit) && !(unit == "m" && rest.starts_with("ms")) {
            at += digits + unit.len();
        }
    }
    (at > 0).then_some(at)
}

/// The longest address at the start of `s`: a MAC, IPv4 or IPv6 address
/// (nft's `addrstring`).
fn address(s: &str) -> Option<(AddrLit, usize)> {
    let run = s
        .bytes()
        .take(MAX_ADDR_LEN)
        .take_while(|c| c.is_ascii_hexdigit() || *c == b':' || *c == b'.')
        .count();
    let run = &s[..run];
    if !run.contains([':', '.']) {
        return None;
    }
    (1..=run.len())
        .rev()
        .find_map(|n| parse_addr(&run[..n]).map(|a| (a, n)))
}

/// An address written in full.
fn parse_addr(s: &str) -> Option<AddrLit> {
    if let Some(mac) = parse_mac(s) {
        return Some(AddrLit::Mac(mac));
    }
    if s.contains(':') {
        return s.parse::<Ipv6Addr>().ok().map(AddrLit::Ipv6);
    }
    s.parse::<Ipv4Addr>().ok().map(AddrLit::Ipv4)
}

/// Six groups of one or two hex digits, separated by `:`.
fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut groups = s.split(':');
    for byte in &mut mac {
        let g = groups.next()?;
        if g.is_empty() || g.len() > 2 {
            return None;
        }
        *byte = u8::from_str_radix(g, 16).ok()?;
    }
    groups.next().is_none().then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s, 0).unwrap().into_iter().map(|t| t.tok).collect()
    }

    fn word(s: &str) -> Tok {
        Tok::Word(s.to_string())
    }

    #[test]
    fn addresses_numbers_and_words() {
        assert_eq!(
            toks("ip saddr 10.0.0.0/8 tcp dport 0x16-1024"),
            vec![
                word("ip"),
                word("saddr"),
                Tok::Addr(AddrLit::Ipv4("10.0.0.0".parse().unwrap())),
                Tok::Slash,
                Tok::Number(8),
                word("tcp"),
                word("dport"),
                Tok::Number(22),
                Tok::Dash,
                Tok::Number(1024),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("::ffff:1.2.3.4 dead::beef :: deadbeef 00:11:22:aa:b:C"),
            vec![
                Tok::Addr(AddrLit::Ipv6("::ffff:1.2.3.4".parse().unwrap())),
                Tok::Addr(AddrLit::Ipv6("dead::beef".parse().unwrap())),
                Tok::Addr(AddrLit::Ipv6(Ipv6Addr::UNSPECIFIED)),
                word("deadbeef"),
                Tok::Addr(AddrLit::Mac([0, 0x11, 0x22, 0xaa, 0xb, 0xc])),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn map_colons_stay_colons() {
        assert_eq!(
            toks("{22:accept, 80 : drop}"),
            vec![
                Tok::LBrace,
                Tok::Number(22),
                Tok::Colon,
                word("accept"),
                Tok::Comma,
                Tok::Number(80),
                Tok::Colon,
                word("drop"),
                Tok::RBrace,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn operator_words_and_glued_words() {
        assert_eq!(
            toks("flags and syn or ack android mbytes/second echo-request 10s 8021ad 8021q"),
            vec![
                word("flags"),
                Tok::Amp,
                word("syn"),
                Tok::Pipe,
                word("ack"),
                word("android"),
                word("mbytes/second"),
                word("echo-request"),
                word("10s"),
                word("8021ad"),
                word("8021q"),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn comments_newlines_continuations_and_strings() {
        assert_eq!(
            toks("a # x \"y\n\"q r\"\\\nb\r\n"),
            vec![
                word("a"),
                Tok::Newline,
                Tok::Quoted("q r".into()),
                word("b"),
                Tok::Newline,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn bad_input_is_an_error_with_a_span() {
        let e = tokenize("a \"open", 10).unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.span),
            ("unterminated string", Span::new(12, 13))
        );
        let e = tokenize("a %", 0).unwrap_err();
        assert_eq!(e.span, Span::new(2, 3));
        // As in nft, a number past 64 bits is a word.
        assert_eq!(
            toks("99999999999999999999"),
            vec![word("99999999999999999999"), Tok::Eof]
        );
    }

    /// The short way reads what the longest-match rules read, wherever it
    /// reads anything: at every offset of element forms and of texts
    /// that look like them (time strings, hex, MACs, IPv6, long runs).
    #[test]
    fn plain_tokens_are_the_longest_tokens() {
        let texts = [
            "{ 10.0.0.1, 10.0.0.2 }",
            "10.0.0.0/8,10.0.0.1-10.0.0.9 . 22-80",
            "1.2.3.4.5 1.2.3 256.1.1.1 01.2.3.4 1. 1..2 .1 0.0.0.0",
            "10.0.0.1a 10.0.0.1:80 10.0.0.1_ 10.0.0.1/ 10.0.0.1- 10.0.0.1é",
            "22 0x16 0X1f 10s 1h30m 1ms 8021q 8021ad 8021 1e3 1_000 22: 22:accept",
            "99999999999999999999 18446744073709551615 18446744073709551616",
            "::ffff:1.2.3.4 1:2::3 00:11:22:33:44:55 12:34 fe80::1.2.3.4",
            "123456789012345678901234567890123456789012345678.1 1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16",
        ];
        let mut checked = 0;
        for text in texts {
            for (at, _) in text.char_indices() {
                let s = &text[at..];
                if let Some(short) = plain(s) {
                    assert_eq!(Some(short), longest(s), "at {at} of {text:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 100, "{checked}");
    }

    #[test]
    fn spans_are_offset_by_the_base() {
        let t = tokenize("ab cd", 100).unwrap();
        assert_eq!(t[1].span, Span::new(103, 105));
        assert_eq!(t[2].span, Span::new(105, 105));
    }
}
