//! Syntax: the text of a filter to a syntax tree.
//!
//! [`lexer`] splits the text into tokens as libpcap's `scanner.l` does,
//! [`parser`] builds the tree of [`ast`] with `grammar.y`'s rules. Nothing
//! here looks a name up or knows the link type: that is [`crate::check`].

pub mod ast;
pub mod chain;
pub mod lexer;
pub mod parser;
