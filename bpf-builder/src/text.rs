//! Text from outside (interface names, program and pin names, filter
//! expressions) made safe to print on a terminal: [`escape`] is the one
//! helper the messages of this crate and of its users (pcap2bpf and its
//! command) put such names through; [`hex_bytes`] prints map keys and
//! values in messages.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` is printed as an escape: the C0 controls (below U+0020),
/// DEL (U+007F) and the C1 controls (U+0080 to U+009F), and the invisible
/// characters that change how the text around them reads (zero-width
/// characters, bidirectional overrides and isolates, line and paragraph
/// separators, the byte order mark, interlinear annotations, tags).
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{061c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{e0000}'..='\u{e007f}'
        )
}

/// How [`escape`] writes `c`, if it does not write it as it is: `\xNN`
/// (two hex digits) for characters below U+0080, `\u{NN}` (lower-case hex)
/// for the others.
pub fn escape_char(c: char) -> Option<String> {
    if !needs_escape(c) {
        return None;
    }
    let mut s = String::new();
    if (c as u32) < 0x80 {
        let _ = write!(s, "\\x{:02x}", c as u32);
    } else {
        let _ = write!(s, "\\u{{{:x}}}", c as u32);
    }
    Some(s)
}

/// `s` with every character [`needs_escape`] names written as an escape
/// (see [`escape_char`]): `"a\x1b[2J\nb"` becomes `a\x1b[2J\x0ab`. Other
/// characters, backslashes included, stay as they are, so escaping twice
/// changes nothing; what comes out holds no control character.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match escape_char(c) {
            Some(e) => out.push_str(&e),
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Bytes as `bpftool map dump` prints keys and values: two lower-case hex
/// digits each, separated by spaces (`0a 00 00 01`). Messages about map
/// entries show keys this way.
pub fn hex_bytes(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_print_as_bpftool_does() {
        assert_eq!(hex_bytes(&[10, 0, 0, 0xff]), "0a 00 00 ff");
        assert_eq!(hex_bytes(&[]), "");
    }

    #[test]
    fn controls_become_escapes() {
        assert_eq!(escape("eth0"), "eth0");
        assert_eq!(escape("a\x1b[2J\nb"), "a\\x1b[2J\\x0ab");
        assert_eq!(escape("\x7f\u{85}\u{202e}x"), "\\x7f\\u{85}\\u{202e}x");
        assert_eq!(escape("é ü"), "é ü");
    }

    #[test]
    fn escaping_twice_changes_nothing() {
        let once = escape("x\x1b\ty\u{9b}").into_owned();
        assert_eq!(escape(&once), once);
    }
}
