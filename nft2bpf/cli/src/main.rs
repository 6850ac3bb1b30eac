//! `nft2bpf`: nftables' rulesets for the netdev family, checked,
//! compiled to XDP and tcx, run over captures, and loaded (pinned, so
//! they outlive the command). One module per command; the work is the
//! library's (`nft2bpf::deploy`).

mod apply;
mod check;
mod common;
mod compile;
mod list;
mod load;
mod log;
mod run;
mod sets;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// chains, rules and sets and the size of each program it makes, or
    /// its errors as FILE:LINE:COL with a caret. Exits 1 on an error.
    Check(check::Args),
    /// Compile the program of one hook and device and print or write it.
    Compile(compile::Args),
    /// Load a ruleset: attach a program to each hook and device its base
    /// chains name, pinned under the pin root; replaces (atomically, per
    /// program) the ruleset loaded before.
    Load(load::Args),
    /// Detach the loaded ruleset and remove its pins.
    Unload(load::UnloadArgs),
    /// Show the loaded ruleset, its counters, or a set (`list set
    /// [netdev] TABLE SET`, with the elements it holds now).
    List(list::Args),
    /// Print the records of `log` statements as packets hit them.
    Log(log::Args),
    /// Run a ruleset over the packets of a pcap or pcapng capture.
    Run(run::Args),
    /// `add element [netdev] TABLE SET { ELEMENTS }`: add elements to a
    /// set or verdict map of the loaded ruleset, in place (elements
    /// already there are no error).
    Add(sets::Args),
    /// `create element [netdev] TABLE SET { ELEMENTS }`: like `add`, but
    /// an element already there is an error.
    Create(sets::Args),
    /// `delete element [netdev] TABLE SET { ELEMENTS }`: remove elements
    /// of a set of the loaded ruleset, in place (each must be there).
    Delete(sets::Args),
    /// `flush set [netdev] TABLE SET`: remove every element of a set of
    /// the loaded ruleset, in place.
    Flush(sets::Args),
    /// Apply a file of set commands (`add element`, `create element`,
    /// `delete element`, `flush set`; `-` for stdin) as one transaction:
    /// all are checked first (an error changes nothing), then each set
    /// touched is replaced whole, at once: a packet sees the old set or
    /// the new one.
    Apply(apply::Args),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Check(a) => check::run(&a),
        Command::Compile(a) => compile::run(&a),
        Command::Load(a) => load::run(&a),
        Command::Unload(a) => load::unload(&a),
        Command::List(a) => list::run(&a),
        Command::Log(a) => log::run(&a),
        Command::Run(a) => run::run(&a),
        Command::Add(a) => sets::run("add", &a),
        Command::Create(a) => sets::run("create", &a),
        Command::Delete(a) => sets::run("delete", &a),
        Command::Flush(a) => sets::run("flush", &a),
        Command::Apply(a) => apply::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            common::report(&message);
            ExitCode::FAILURE
        }
    }
}
