//! `compile FILE --emit asm|ir|json|elf`: one program of the ruleset.

use std::path::PathBuf;

use clap::ValueEnum;
use nft2bpf::compile::program::Mode;
use nft2bpf::deploy::{self, Compiled, Meta, Source};
use serde_json::json;

use crate::common::{HookArg, device_for_compile, msg, one_target};

/// What `--emit` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Emit {
    /// The instruction listing.
    Asm,
    /// The IR's text (reads back with `pktmatch::ir::Ir::from_text`).
    Ir,
    /// Decisions, counter and log slots, and instructions as JSON.
    Json,
    /// A relocatable BPF ELF object.
    Elf,
}

/// `compile`'s options.
#[derive(clap::Args)]
pub struct Args {
    /// The ruleset file.
    file: PathBuf,
    /// The hook.
    #[arg(long, value_enum, default_value = "xdp")]
    hook: HookArg,
    /// The device (needed when the hook's chains name several; a device
    /// no chain names runs every chain of the hook).
    #[arg(short = 'i', value_name = "IF")]
    iface: Option<String>,
    /// The output format.
    #[arg(long, value_enum)]
    emit: Emit,
    /// Write to this file instead of stdout.
    #[arg(short = 'o', value_name = "OUT")]
    output: Option<PathBuf>,
}

/// The ruleset as run on `iface`: its own chains there, or every chain
/// moved there when none names it.
pub fn ruleset_on(
    src: &Source,
    hook: HookArg,
    iface: Option<&str>,
) -> Result<(nft2bpf::check::tree::Ruleset, String), String> {
    let own = deploy::targets(&src.ruleset, hook.ingress());
    if let Some(i) = iface
        && !own.iter().any(|(a, d)| *a == hook.attach() && d == i)
    {
        let rs = deploy::on_devices(&src.ruleset, &[i.to_string()]);
        let dev = one_target(&deploy::targets(&rs, hook.ingress()), hook, Some(i))?;
        return Ok((rs, dev));
    }
    let dev = one_target(&own, hook, iface)?;
    Ok((src.ruleset.clone(), dev))
}

/// Runs `compile`.
pub fn run(a: &Args) -> Result<(), String> {
    let src = Source::read(&a.file).map_err(msg)?;
    let (rs, dev) = ruleset_on(&src, a.hook, a.iface.as_deref())?;
    let c = deploy::compile(
        &src,
        &rs,
        a.hook.attach(),
        &device_for_compile(&dev),
        Mode::Hook,
    )
    .map_err(msg)?;
    let bytes = match a.emit {
        Emit::Asm => c
            .program
            .object
            .listing(c.program.prog)
            .map_err(|e| e.to_string())?
            .into_bytes(),
        Emit::Ir => c.lowered.ir.to_string().into_bytes(),
        Emit::Json => {
            let mut s = json_of(&src, &rs, &c).to_string();
            s.push('\n');
            s.into_bytes()
        }
        Emit::Elf => c.program.object.to_elf().map_err(|e| e.to_string())?,
    };
    match &a.output {
        Some(path) => {
            std::fs::write(path, &bytes).map_err(|e| format!("writing {}: {e}", path.display()))
        }
        None => crate::common::out(&bytes),
    }
}

/// The program as JSON: where it runs, its decisions, counter and log
/// slots, instructions.
fn json_of(src: &Source, rs: &nft2bpf::check::tree::Ruleset, c: &Compiled) -> serde_json::Value {
    let tables = deploy::tables(rs, &src.ast);
    let meta = Meta::new(src.name(), rs, tables, &c.lowered);
    let meta: serde_json::Value =
        serde_json::from_str(&meta.to_json()).unwrap_or(serde_json::Value::Null);
    let insns: Vec<_> = pktmatch_insns(c)
        .iter()
        .map(|i| json!({"code": i.code, "dst": i.dst, "src": i.src, "off": i.off, "imm": i.imm}))
        .collect();
    json!({
        "hook": c.lowered.attach.name(),
        "device": c.lowered.device.name,
        "decisions": meta["decisions"],
        "counters": meta["counters"],
        "logs": meta["logs"],
        "maps": c.program.object.maps().map(|(_, m)| m.name.clone()).collect::<Vec<_>>(),
        "insns": insns,
    })
}

fn pktmatch_insns(c: &Compiled) -> Vec<bpf_builder::insn::Insn> {
    c.program
        .object
        .layout(c.program.prog)
        .map(|l| l.insns)
        .unwrap_or_else(|_| c.program.object.program(c.program.prog).code.insns.clone())
}
