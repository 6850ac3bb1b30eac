//! nft's grammar (`src/parser_bison.y`, the parts for netdev tables), as
//! recursive descent over tokens.
//!
//! `ruleset` reads commands and blocks (tables, chains, sets, named
//! objects), `stmt` the statements of a rule, `expr` expressions. As
//! in nft, every item of a block ends with a newline or `;` (so `chain c {
//! accept }` is an error, `chain c { accept; }` is not), and an `include`
//! splices the included file's tokens where it stands.
//!
//! Hostile input is bounded: includes nest at most [`MAX_INCLUDE_DEPTH`]
//! files deep and may not include a file that is including them;
//! parentheses and braces nest at most [`MAX_NESTING`] levels; an
//! expression tree is at most [`MAX_HEIGHT`] nodes high (a chain `a | b |
//! c` is one level higher per operator). Every later pass recurses over
//! expression trees only, so none of them can run out of stack.

mod expr;
mod ruleset;
mod stmt;

pub(crate) use expr::UNQUALIFIED_META;

use std::path::PathBuf;

use pktmatch::Span;

use crate::error::Error;
use crate::source::{FileId, SourceMap};
use crate::syntax::ast::{Ident, Num, Ruleset};
use crate::syntax::include::{Loader, resolve};
use crate::syntax::lexer::tokenize;
use crate::syntax::token::{Tok, Token};

/// How deep includes nest (nft's `MAX_INCLUDE_DEPTH`).
pub const MAX_INCLUDE_DEPTH: usize = 16;

/// How deep parentheses and braces nest inside expressions.
pub const MAX_NESTING: usize = 64;

/// How high an expression tree may be, counting every node.
pub const MAX_HEIGHT: usize = 256;

/// Parses the file `file` of `map`; files it includes are read through
/// `loader` and added to `map`.
pub fn parse(map: &mut SourceMap, file: FileId, loader: &mut dyn Loader) -> Result<Ruleset, Error> {
    let f = map.file(file);
    let toks = tokenize(&f.text, f.start)?;
    let path = f.path.clone();
    let mut p = Parser {
        map,
        loader,
        frames: vec![Frame {
            toks,
            pos: 0,
            identity: path.clone(),
            path,
        }],
        nesting: 0,
        in_element_key: false,
    };
    p.ruleset()
}

/// Parses the file `file` of `map` as one command on a set of a running
/// ruleset ([`crate::syntax::ast::SetCommand`]): `add element netdev t s
/// { 10.0.0.1 }` and the like, as nft's command line takes them. Nothing
/// is included.
pub fn parse_set_command(
    map: &mut SourceMap,
    file: FileId,
) -> Result<crate::syntax::ast::SetCommand, Error> {
    parse_commands(map, file, |p| p.set_command())
}

/// Parses the file `file` of `map` as commands on sets of a running
/// ruleset, one a line or between `;` (comments and empty lines
/// allowed), as `nft -f` reads a file of them. Nothing is included.
pub fn parse_set_commands(
    map: &mut SourceMap,
    file: FileId,
) -> Result<Vec<crate::syntax::ast::SetCommand>, Error> {
    parse_commands(map, file, |p| p.set_commands())
}

/// Runs `parse` over the tokens of `file`, which includes nothing.
fn parse_commands<T>(
    map: &mut SourceMap,
    file: FileId,
    parse: impl for<'p> FnOnce(&mut Parser<'p>) -> Result<T, Error>,
) -> Result<T, Error> {
    let f = map.file(file);
    let toks = tokenize(&f.text, f.start)?;
    let mut loader = crate::syntax::MemLoader::new();
    let mut p = Parser {
        map,
        loader: &mut loader,
        frames: vec![Frame {
            toks,
            pos: 0,
            identity: None,
            path: None,
        }],
        nesting: 0,
        in_element_key: false,
    };
    parse(&mut p)
}

/// The tokens of one file, and how far the parser has read them.
struct Frame {
    toks: Vec<Token>,
    pos: usize,
    /// The file's identity from the [`Loader`], for the cycle check.
    identity: Option<PathBuf>,
    /// Where it was read from, to resolve its includes.
    path: Option<PathBuf>,
}

/// The parser's state: the stack of files being read (the top one is an
/// include of the one below it) and the nesting of the expression being
/// read.
pub(crate) struct Parser<'a> {
    map: &'a mut SourceMap,
    loader: &'a mut dyn Loader,
    frames: Vec<Frame>,
    nesting: usize,
    /// Inside a set element's key, where no statement can start: words
    /// such as `redirect` (an ICMP type) are values there.
    in_element_key: bool,
}

impl Parser<'_> {
    /// The next token.
    fn peek(&self) -> &Token {
        self.peek_nth(0)
    }

    /// The token `n` places ahead (the end of the file if there is none).
    fn peek_nth(&self, mut n: usize) -> &Token {
        for frame in self.frames.iter().rev() {
            let left = frame.toks.len() - frame.pos;
            if n < left {
                return &frame.toks[frame.pos + n];
            }
            n -= left;
        }
        let root = &self.frames[0].toks;
        &root[root.len() - 1]
    }

    /// The next token's kind.
    fn tok(&self) -> &Tok {
        &self.peek().tok
    }

    /// Takes the next token (the end of the file stays).
    fn bump(&mut self) -> Token {
        let frame = self.frames.last_mut().expect("the root frame stays");
        let t = frame.toks[frame.pos].clone();
        if t.tok != Tok::Eof {
            frame.pos += 1;
        }
        while self.frames.len() > 1 && self.frames.last().is_some_and(|f| f.pos == f.toks.len()) {
            self.frames.pop();
        }
        t
    }

    /// Takes the next token if it is `tok`.
    fn eat(&mut self, tok: &Tok) -> Option<Span> {
        (self.tok() == tok).then(|| self.bump().span)
    }

    /// Takes the next token, which must be `tok`.
    fn expect(&mut self, tok: &Tok) -> Result<Span, Error> {
        match self.eat(tok) {
            Some(span) => Ok(span),
            None => Err(self.unexpected(&tok.describe())),
        }
    }

    /// Whether the next token is the word `w`.
    fn at_word(&self, w: &str) -> bool {
        matches!(self.tok(), Tok::Word(x) if x == w)
    }

    /// The next token's word, if it is one.
    fn word(&self) -> Option<&str> {
        match self.tok() {
            Tok::Word(w) => Some(w),
            _ => None,
        }
    }

    /// Takes the word `w` if it comes next.
    fn eat_word(&mut self, w: &str) -> Option<Span> {
        self.at_word(w).then(|| self.bump().span)
    }

    /// Takes the word `w`, which must come next.
    fn expect_word(&mut self, w: &str) -> Result<Span, Error> {
        match self.eat_word(w) {
            Some(span) => Ok(span),
            None => Err(self.unexpected(&format!("`{w}`"))),
        }
    }

    /// A word: a keyword, or a name (of a table, chain, set, object:
    /// nft 1.0.6 takes no quoted string there).
    fn keyword(&mut self, what: &str) -> Result<Ident, Error> {
        match self.tok().clone() {
            Tok::Word(name) => Ok(Ident {
                name,
                span: self.bump().span,
            }),
            _ => Err(self.unexpected(what)),
        }
    }

    /// A number.
    fn number(&mut self, what: &str) -> Result<Num, Error> {
        match *self.tok() {
            Tok::Number(value) => Ok(Num {
                value,
                span: self.bump().span,
            }),
            _ => Err(self.unexpected(what)),
        }
    }

    /// Whether the next token ends a statement: a newline, `;`, `}` or
    /// the end of the file.
    fn at_end_of_statement(&self) -> bool {
        matches!(
            self.tok(),
            Tok::Newline | Tok::Semi | Tok::RBrace | Tok::Eof
        )
    }

    /// Takes the newline or `;` that must end an item of a block.
    fn separator(&mut self) -> Result<(), Error> {
        match self.tok() {
            Tok::Newline | Tok::Semi => {
                self.bump();
                Ok(())
            }
            _ => Err(self.unexpected("newline or semicolon")),
        }
    }

    /// Skips newlines and `;`.
    fn skip_separators(&mut self) {
        while matches!(self.tok(), Tok::Newline | Tok::Semi) {
            self.bump();
        }
    }

    /// Skips newlines (inside braces of sets, where nft allows them).
    fn skip_newlines(&mut self) {
        while *self.tok() == Tok::Newline {
            self.bump();
        }
    }

    /// Skips to the end of the statement (a newline, `;`, or the `}` that
    /// closes the block), over balanced braces and parentheses; the span
    /// covers what was skipped.
    fn skip_statement(&mut self, start: Span) -> Span {
        let mut span = start;
        let mut depth = 0usize;
        loop {
            match self.tok() {
                Tok::Eof => break,
                Tok::Newline | Tok::Semi | Tok::RBrace if depth == 0 => break,
                Tok::LBrace | Tok::LParen => depth += 1,
                Tok::RBrace | Tok::RParen => depth = depth.saturating_sub(1),
                _ => {}
            }
            span = span.to(self.bump().span);
        }
        span
    }

    /// `syntax error, unexpected X, expecting Y`, at the next token.
    fn unexpected(&self, expecting: &str) -> Error {
        let t = self.peek();
        let message = match t.tok {
            Tok::Eof => "syntax error, unexpected end of file".to_string(),
            _ => format!(
                "syntax error, unexpected {}, expecting {expecting}",
                t.tok.describe()
            ),
        };
        Error::new(message, t.span)
    }

    /// Enters a parenthesis or brace: an error past [`MAX_NESTING`].
    fn enter(&mut self, at: Span) -> Result<(), Error> {
        if self.nesting >= MAX_NESTING {
            return Err(Error::new(
                format!(
                    "nesting too deep: more than {MAX_NESTING} levels of parentheses and braces"
                ),
                at,
            ));
        }
        self.nesting += 1;
        Ok(())
    }

    /// Leaves what [`Parser::enter`] entered.
    fn leave(&mut self) {
        self.nesting -= 1;
    }

    /// `include "FILE"` and its separator, if it comes next: the file's
    /// tokens are read next. Returns whether there was one.
    fn include(&mut self) -> Result<bool, Error> {
        if !self.at_word("include") {
            return Ok(false);
        }
        let start = self.bump().span;
        let Tok::Quoted(target) = self.tok().clone() else {
            return Err(self.unexpected("quoted string"));
        };
        let span = start.to(self.bump().span);
        self.separator()?;
        if self.frames.len() > MAX_INCLUDE_DEPTH {
            return Err(Error::new(
                format!("Include nested too deeply, max {MAX_INCLUDE_DEPTH} levels"),
                span,
            ));
        }
        let from = self.frames.iter().rev().find_map(|f| f.path.clone());
        let path = resolve(from.as_deref(), &target);
        let (identity, text) = self.loader.load(&path).map_err(|e| {
            // Without Rust's " (os error N)": the message is for people.
            let why = e.to_string();
            let why = why.split(" (os error").next().unwrap_or(&why).to_string();
            Error::new(
                format!("Could not open file \"{}\": {why}", path.display()),
                span,
            )
        })?;
        if self
            .frames
            .iter()
            .any(|f| f.identity.as_ref() == Some(&identity))
        {
            return Err(Error::new(
                format!(
                    "include cycle: \"{}\" is already being read",
                    path.display()
                ),
                span,
            ));
        }
        let name = path.display().to_string();
        let file = self.map.add(name, Some(&path), text, Some(span));
        let f = self.map.file(file);
        let mut toks = tokenize(&f.text, f.start)?;
        // The file's end ends the line it is on, whatever follows.
        if let Some(last) = toks.last_mut() {
            last.tok = Tok::Newline;
        }
        self.frames.push(Frame {
            toks,
            pos: 0,
            identity: Some(identity),
            path: Some(path),
        });
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::include::MemLoader;

    /// Parses `text` as `main.nft` with `files` to include.
    fn parse_with(text: &str, files: MemLoader) -> Result<Ruleset, String> {
        let mut map = SourceMap::new();
        let file = map.add(
            "main.nft",
            Some(std::path::Path::new("main.nft")),
            text,
            None,
        );
        let mut loader = files;
        parse(&mut map, file, &mut loader).map_err(|e| e.render(&map))
    }

    fn parse_text(text: &str) -> Result<Ruleset, String> {
        parse_with(text, MemLoader::new())
    }

    /// Printing and parsing again gives the same text.
    fn round_trip(text: &str) -> String {
        let once = parse_text(text)
            .unwrap_or_else(|e| panic!("{e}"))
            .to_string();
        let twice = parse_text(&once)
            .unwrap_or_else(|e| panic!("{e}\n{once}"))
            .to_string();
        assert_eq!(once, twice);
        once
    }

    #[test]
    fn a_ruleset_prints_back() {
        let text = r#"flush ruleset
define ports = { 22, 80 }
table netdev filt {
  set allowed { type ipv4_addr . inet_service; flags interval; elements = { 10.0.0.1 . 22, 10.0.0.0/8 . 80-90 } }
  counter c1 { packets 0 bytes 0 }
  quota q1 { over 100 mbytes used 0 bytes }
  chain web { tcp dport 80 accept; return; }
  chain ing {
    type filter hook ingress device "veth0" priority 0; policy accept;
    ip saddr . tcp dport @allowed counter name c1 accept
    tcp dport $ports counter
    tcp flags & (syn | ack) == syn limit rate over 10/second burst 5 packets drop
    tcp dport vmap { 22 : accept, 80 : jump web }
    ip dscp ef ip ttl 64 ip length 100-200 log prefix "hi" level warn
    ip6 saddr ::ffff:1.2.3.4 ip6 daddr fe80::/10 drop
    meta pkttype broadcast quota over 10 mbytes drop
    vlan id 10 vlan pcp 3 vlan dei 1 counter
    ether saddr 00:11:22:33:44:55 fwd to "veth1"
    icmp type echo-request accept comment "ping"
    tcp flags syn / syn,ack limit rate 1 mbytes/second
    ct state established accept
  }
}
"#;
        let printed = round_trip(text);
        assert!(printed.contains("\t\ttcp flags & (syn | ack) == syn limit rate over 10/second burst 5 packets drop\n"), "{printed}");
        assert!(printed.contains("\t\tct state ...\n"), "{printed}");
    }

    #[test]
    fn items_need_separators_as_in_nft() {
        let e = parse_text("table netdev t { chain a { accept } }").unwrap_err();
        assert!(
            e.starts_with(
                "main.nft:1:35: error: syntax error, unexpected '}', expecting newline or semicolon"
            ),
            "{e}"
        );
        let e = parse_text("table netdev t { chain a { accept; } }").unwrap_err();
        assert!(
            e.starts_with(
                "main.nft:1:38: error: syntax error, unexpected '}', expecting newline or semicolon"
            ),
            "{e}"
        );
        parse_text("table netdev t { set s { type ipv4_addr; elements = { 1.2.3.4 } }; }").unwrap();
    }

    #[test]
    fn includes_splice_files_and_stop_cycles_and_depth() {
        let files = MemLoader::new()
            .with("sets.nft", "define x = 1\n")
            .with("a.nft", "include \"b.nft\"\n")
            .with("b.nft", "include \"a.nft\"\n");
        let r = parse_with(
            "include \"sets.nft\"\ntable netdev t { chain c { ip ttl $x; }; }\n",
            files.clone(),
        )
        .unwrap();
        assert_eq!(r.commands.len(), 2);
        let e = parse_with("include \"a.nft\"\n", files).unwrap_err();
        assert!(e.starts_with("b.nft:1:1: error: include cycle"), "{e}");
        assert!(
            e.contains(
                "a.nft:1:1: note: included from here\nmain.nft:1:1: note: included from here\n"
            ),
            "{e}"
        );
        let mut deep = MemLoader::new();
        for i in 0..40 {
            deep = deep.with(format!("f{i}.nft"), format!("include \"f{}.nft\"\n", i + 1));
        }
        let e = parse_with("include \"f0.nft\"\n", deep).unwrap_err();
        assert!(
            e.contains("Include nested too deeply, max 16 levels"),
            "{e}"
        );
        let e = parse_text("include \"nope.nft\"\n").unwrap_err();
        assert!(
            e.starts_with("main.nft:1:1: error: Could not open file \"nope.nft\""),
            "{e}"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!(
            "table netdev t {{ chain c {{ tcp dport {}1{} ; }} }}",
            "(".repeat(100_000),
            ")".repeat(100_000)
        );
        let e = parse_text(&deep).unwrap_err();
        assert!(e.contains("nesting too deep"), "{e}");
        let long = format!(
            "table netdev t {{ chain c {{ tcp flags {}syn ; }} }}",
            "syn | ".repeat(100_000)
        );
        let e = parse_text(&long).unwrap_err();
        assert!(e.contains("expression too complex"), "{e}");
        let sets = format!(
            "define x = {}1{}\n",
            "{ ".repeat(100_000),
            " }".repeat(100_000)
        );
        let e = parse_text(&sets).unwrap_err();
        assert!(e.contains("nesting too deep"), "{e}");
    }
}
