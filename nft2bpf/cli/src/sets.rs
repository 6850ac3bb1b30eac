//! `add element`, `create element`, `delete element`, `flush set`:
//! the loaded ruleset's sets changed in place, in nft's syntax (the
//! words after the verb are joined with spaces, as nft joins its
//! arguments, and errors have a caret under that text).

use nft2bpf::deploy::sets::{self, Done};

use crate::common::{PinRootArg, msg};

/// The options of a command on a set.
#[derive(clap::Args)]
pub struct Args {
    /// `element [netdev] TABLE SET { ELEMENTS }` (`set [netdev] TABLE
    /// SET` for `flush`).
    #[arg(required = true, num_args = 1..)]
    words: Vec<String>,
    #[command(flatten)]
    root: PinRootArg,
}

/// Runs `verb` (`add`, `create`, `delete`, `flush`, `list`) with `a`.
pub fn run(verb: &str, a: &Args) -> Result<(), String> {
    run_words(verb, &a.words, &a.root)
}

/// Runs `VERB WORDS...` on the ruleset under `root`; prints a listing.
pub fn run_words(verb: &str, words: &[String], root: &PinRootArg) -> Result<(), String> {
    let text = format!("{verb} {}", words.join(" "));
    match sets::run(&root.pin_root, &text).map_err(msg)? {
        Done::Changed { .. } => Ok(()),
        Done::Listing(text) => crate::common::out(crate::common::escape_text(&text).as_bytes()),
    }
}
