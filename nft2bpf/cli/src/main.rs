//! `nft2bpf`: nftables' rulesets for the netdev family. `check FILE`
//! parses and checks a ruleset as `nft -f` would, and says what it holds
//! or, as a compiler does, where it is wrong.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use bpf_builder::text;
use clap::{Parser, Subcommand};
use nft2bpf::SourceMap;
use nft2bpf::check::tree::{Hook, Policy, Ruleset};
use nft2bpf::syntax::{FsLoader, Loader};

/// nftables' netdev rulesets, for XDP and tcx.
#[derive(Parser)]
#[command(name = "nft2bpf", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and check a ruleset file (with its includes); print its base
    /// chains, rules and sets, or its errors as FILE:LINE:COL with a
    /// caret. Exits 1 on an error.
    Check {
        /// The ruleset file, as `nft -f` reads it.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check { file } => match check(&file) {
            Ok(summary) => {
                print!("{summary}");
                ExitCode::SUCCESS
            }
            Err(message) => {
                report(&message);
                ExitCode::FAILURE
            }
        },
    }
}

/// Every line of `message` on stderr after the command's name, escaped
/// but for tabs, which a caret line repeats to stay under its source line
/// (both lines get the prefix).
fn report(message: &str) {
    let mut err = std::io::stderr().lock();
    for line in message.trim_end().lines() {
        let escaped: Vec<_> = line.split('\t').map(text::escape).collect();
        let _ = writeln!(err, "nft2bpf: {}", escaped.join("\t"));
    }
}

/// Checks `file`: its summary, or its errors rendered.
fn check(file: &std::path::Path) -> Result<String, String> {
    let (_, source) = FsLoader
        .load(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    // Includes resolve from the path as given, and messages show it so.
    let mut map = SourceMap::new();
    let id = map.add(file.display().to_string(), Some(file), source, None);
    let ruleset = nft2bpf::check_ruleset(&mut map, id, &mut FsLoader)
        .map_err(|errors| errors.render(&map))?;
    Ok(summary(&ruleset))
}

/// One line per base chain, then the totals.
fn summary(r: &Ruleset) -> String {
    let mut out = String::new();
    for (_, chain, base) in r.base_chains() {
        let table = &r.tables[chain.table].name;
        let hook = match base.hook {
            Hook::Ingress => "ingress",
            Hook::Egress => "egress",
        };
        let policy = match base.policy {
            Policy::Accept => "accept",
            Policy::Drop => "drop",
        };
        out.push_str(&format!(
            "table netdev {} chain {}: hook {hook} device {} priority {} policy {policy}, {} rules\n",
            text::escape(table),
            text::escape(&chain.name),
            text::escape(&base.devices.join(",")),
            base.priority,
            chain.rules.len()
        ));
    }
    let named = r.sets.values().filter(|s| s.name.is_some()).count();
    out.push_str(&format!(
        "{} tables, {} chains ({} base), {} rules, {} named sets\n",
        r.tables.len(),
        r.chains.len(),
        r.base_chains().count(),
        r.rules.len(),
        named
    ));
    out
}
