//! Syntax: the text of a ruleset to a syntax tree.
//!
//! [`lexer`] splits a file into [`token`]s as nft's `scanner.l` does,
//! [`parser`] builds the tree of [`ast`] with `parser_bison.y`'s rules and
//! reads the files an `include` names through an [`include::Loader`];
//! [`print`](mod@print) writes a tree back as text. Nothing here looks a name up or
//! knows a type: that is [`crate::check`].

pub mod ast;
pub mod include;
pub mod lexer;
pub mod parser;
pub mod print;
pub mod token;

pub use include::{FsLoader, Loader, MemLoader};
pub use parser::{parse, parse_set_command, parse_set_commands};
