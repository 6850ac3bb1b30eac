//! `apply FILE`: a file of commands on the loaded ruleset's sets, as
//! `nft -f` takes one, applied as one transaction: each set it touches
//! is replaced whole, at once (`nft2bpf::deploy::batch`).

use std::io::Read;
use std::path::PathBuf;

use nft2bpf::deploy::batch;

use crate::common::{PinRootArg, msg};

/// The options of `apply`.
#[derive(clap::Args)]
pub struct Args {
    /// The commands (`add element`, `create element`, `delete element`,
    /// `flush set`; one a line or between `;`); `-` reads them from
    /// standard input.
    file: PathBuf,
    #[command(flatten)]
    root: PinRootArg,
}

/// Reads the file and applies it.
pub fn run(a: &Args) -> Result<(), String> {
    let (name, text) = if a.file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("reading standard input: {e}"))?;
        ("<stdin>".to_string(), text)
    } else {
        let text = std::fs::read_to_string(&a.file)
            .map_err(|e| format!("reading {}: {e}", a.file.display()))?;
        (a.file.display().to_string(), text)
    };
    batch::apply(&a.root.pin_root, &name, &text).map_err(msg)?;
    Ok(())
}
