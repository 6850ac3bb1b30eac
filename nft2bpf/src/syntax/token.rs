//! Tokens, as nft's scanner (`src/scanner.l`) makes them.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use pktmatch::Span;

/// An address written as one token: nft's `addrstring`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrLit {
    /// `10.0.0.1`.
    Ipv4(Ipv4Addr),
    /// `fe80::1`, `::ffff:1.2.3.4`: every textual form of RFC 4291.
    Ipv6(Ipv6Addr),
    /// `00:11:22:33:44:55`: six groups of one or two hex digits.
    Mac([u8; 6]),
}

impl fmt::Display for AddrLit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrLit::Ipv4(a) => write!(f, "{a}"),
            AddrLit::Ipv6(a) => write!(f, "{a}"),
            AddrLit::Mac(m) => write!(
                f,
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            ),
        }
    }
}

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// A word: a letter, `_` or `.` and then letters, digits, `/`, `-`,
    /// `_` and `.` (nft's `string`): keywords, names, symbolic values
    /// (`echo-request`, `mbytes/second`). A number glued to a time unit
    /// (`10s`, `1h30m`) is a word too, as in nft.
    Word(String),
    /// A decimal or `0x` hexadecimal number.
    Number(u64),
    /// An IPv4, IPv6 or MAC address.
    Addr(AddrLit),
    /// A `"quoted string"` (without the quotes; nft has no escapes).
    Quoted(String),
    /// The end of a line: it ends a statement, as `;` does.
    Newline,
    /// `==` or `eq`.
    EqEq,
    /// `!=` or `ne`.
    NotEq,
    /// `<=` or `le`.
    Le,
    /// `<` or `lt`.
    Lt,
    /// `>=` or `ge`.
    Ge,
    /// `>` or `gt`.
    Gt,
    /// `,`.
    Comma,
    /// `.`: concatenation.
    Dot,
    /// `:`.
    Colon,
    /// `;`.
    Semi,
    /// `{`.
    LBrace,
    /// `}`.
    RBrace,
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `<<` or `lshift`.
    Shl,
    /// `>>` or `rshift`.
    Shr,
    /// `^` or `xor`.
    Caret,
    /// `&` or `and`.
    Amp,
    /// `|` or `or`.
    Pipe,
    /// `!` or `not`.
    Bang,
    /// `/`.
    Slash,
    /// `-`.
    Dash,
    /// `*`.
    Star,
    /// `@`.
    At,
    /// `$`.
    Dollar,
    /// `=`.
    Assign,
    /// `+`.
    Plus,
    /// The end of a file.
    Eof,
}

impl Tok {
    /// How an error names the token: `'}'`, `newline`, `string`...
    pub fn describe(&self) -> String {
        let punct = match self {
            Tok::Word(w) => return format!("`{w}`"),
            Tok::Number(n) => return format!("number {n}"),
            Tok::Addr(a) => return format!("address {a}"),
            Tok::Quoted(_) => return "quoted string".to_string(),
            Tok::Newline => return "newline".to_string(),
            Tok::Eof => return "end of file".to_string(),
            Tok::EqEq => "==",
            Tok::NotEq => "!=",
            Tok::Le => "<=",
            Tok::Lt => "<",
            Tok::Ge => ">=",
            Tok::Gt => ">",
            Tok::Comma => ",",
            Tok::Dot => ".",
            Tok::Colon => ":",
            Tok::Semi => ";",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::Shl => "<<",
            Tok::Shr => ">>",
            Tok::Caret => "^",
            Tok::Amp => "&",
            Tok::Pipe => "|",
            Tok::Bang => "!",
            Tok::Slash => "/",
            Tok::Dash => "-",
            Tok::Star => "*",
            Tok::At => "@",
            Tok::Dollar => "$",
            Tok::Assign => "=",
            Tok::Plus => "+",
        };
        format!("'{punct}'")
    }
}

/// A token and the bytes it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub tok: Tok,
    /// Where it is.
    pub span: Span,
}
