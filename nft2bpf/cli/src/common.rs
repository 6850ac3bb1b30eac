//! What the commands share: hook options, the pin root option, error
//! reporting, output.

use std::io::Write;
use std::path::PathBuf;

use bpf_builder::text;
use clap::ValueEnum;
use nft2bpf::compile::{Attach, Device};
use nft2bpf::deploy::{self, DeployError, IngressHook};

/// A hook, as `--hook` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HookArg {
    /// XDP (ingress chains).
    Xdp,
    /// tcx ingress (ingress chains).
    TcxIngress,
    /// tcx egress (egress chains).
    TcxEgress,
}

impl HookArg {
    /// The program's hook.
    pub fn attach(self) -> Attach {
        match self {
            HookArg::Xdp => Attach::Xdp,
            HookArg::TcxIngress => Attach::TcxIngress,
            HookArg::TcxEgress => Attach::TcxEgress,
        }
    }

    /// Where ingress chains run with this option.
    pub fn ingress(self) -> IngressHook {
        match self {
            HookArg::TcxIngress => IngressHook::Tcx,
            _ => IngressHook::Xdp,
        }
    }
}

/// `--pin-root DIR`.
#[derive(clap::Args, Debug, Clone)]
pub struct PinRootArg {
    /// Where the loaded ruleset is pinned (a directory of bpffs).
    #[arg(long, value_name = "DIR", default_value = deploy::PIN_ROOT)]
    pub pin_root: PathBuf,
}

/// Every line of `message` on stderr after the command's name, escaped
/// but for tabs, which a caret line repeats to stay under its source line
/// (both lines get the prefix).
pub fn report(message: &str) {
    let mut err = std::io::stderr().lock();
    for line in message.trim_end().lines() {
        let escaped: Vec<_> = line.split('\t').map(text::escape).collect();
        let _ = writeln!(err, "nft2bpf: {}", escaped.join("\t"));
    }
}

/// A deploy error as the message to report.
pub fn msg(e: DeployError) -> String {
    e.to_string()
}

/// The device `name` for compiling without loading: its MAC address when
/// it exists here, else all zeros (what `meta pkttype` in XDP compares
/// with).
pub fn device_for_compile(name: &str) -> Device {
    let d = deploy::device(name);
    if d.mac.is_some() {
        d
    } else {
        d.with_mac([0; 6])
    }
}

/// Writes `bytes` to stdout.
pub fn out(bytes: &[u8]) -> Result<(), String> {
    let mut o = std::io::stdout().lock();
    o.write_all(bytes)
        .and_then(|()| o.flush())
        .map_err(|e| format!("writing the output: {e}"))
}

/// The one program `--hook` and `-i` choose among the ruleset's.
pub fn one_target(
    targets: &[(Attach, String)],
    hook: HookArg,
    iface: Option<&str>,
) -> Result<String, String> {
    let found: Vec<&String> = targets
        .iter()
        .filter(|(a, d)| *a == hook.attach() && iface.is_none_or(|i| i == d))
        .map(|(_, d)| d)
        .collect();
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(format!(
            "the ruleset has no {} chain{}",
            match hook.attach().hook() {
                nft2bpf::check::tree::Hook::Ingress => "ingress",
                nft2bpf::check::tree::Hook::Egress => "egress",
            },
            iface.map_or(String::new(), |i| format!(" on {}", text::escape(i)))
        )),
        many => Err(format!(
            "the ruleset's {} chains are on several devices ({}): choose one with -i",
            hook.attach().name(),
            many.iter()
                .map(|d| text::escape(d).into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// `s` with every character that is not safe on a terminal escaped,
/// newlines and tabs kept (the text holds names and rules from a file).
pub fn escape_text(s: &str) -> String {
    s.split('\n')
        .map(|line| {
            line.split('\t')
                .map(text::escape)
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n")
}
