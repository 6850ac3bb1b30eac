//! Output formats of `pcap2bpf compile --emit`: assembly text, JSON,
//! raw bytecode, C and Rust arrays, ELF objects, and the text of the IR
//! (optimised, or as lowered: [`lowered_ir`]).

use std::fmt::Write as _;

use bpf_builder::insn::Insn;

use pcap2bpf::{CompileError, CompileOptions, Compiled};

/// What `--emit` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// llvm-objdump-style listing with labels and the filter as comments.
    Asm,
    /// `{"insns": [...], ...}` with the raw instruction fields.
    Json,
    /// The little-endian bytecode, 8 bytes per instruction slot.
    Bytes,
    /// A C array of `struct bpf_insn`.
    C,
    /// A Rust array of 8-byte instructions.
    Rust,
    /// A relocatable BPF ELF object (libbpf, bpftool and aya load it).
    Elf,
    /// The text form of the optimised IR (see `pktmatch::ir`).
    Ir,
}

/// The laid-out instructions of a compiled filter.
pub fn instructions(c: &Compiled) -> Vec<Insn> {
    pktmatch::run::instructions(&c.object, c.program)
}

/// Renders `c` in `format`. `expr` is the filter text (for comments).
pub fn render(c: &Compiled, expr: &str, format: Format) -> Result<Vec<u8>, String> {
    let insns = instructions(c);
    Ok(match format {
        Format::Asm => c
            .object
            .listing(c.program)
            .map_err(|e| e.to_string())?
            .into_bytes(),
        Format::Bytes => Insn::encode_all(&insns),
        Format::Json => json(c, expr, &insns).into_bytes(),
        Format::C => c_array(expr, &insns, frags(c)).into_bytes(),
        Format::Rust => rust_array(expr, &insns, frags(c)).into_bytes(),
        Format::Elf => c.object.to_elf().map_err(|e| e.to_string())?,
        Format::Ir => c.ir.to_string().into_bytes(),
    })
}

/// The text form of the IR of `expr` as lowered, before optimisation
/// (`--emit ir-lowered`).
pub fn lowered_ir(expr: &str, opts: &CompileOptions<'_>) -> Result<String, CompileError> {
    Ok(pcap2bpf::lowered(expr, opts)?.to_string())
}

/// A JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether the program declares XDP fragment support: whoever loads the
/// raw instructions must pass `BPF_F_XDP_HAS_FRAGS`.
fn frags(c: &Compiled) -> bool {
    c.object.program(c.program).xdp_frags
}

/// The comment line that says so.
const FRAGS_NOTE: &str = "load with prog_flags BPF_F_XDP_HAS_FRAGS (XDP fragment support)";

fn json(c: &Compiled, expr: &str, insns: &[Insn]) -> String {
    let mut out = String::new();
    let _ = write!(out, "{{\"expression\":{},\"insns\":[", json_string(expr));
    for (i, insn) in insns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"code\":{},\"dst\":{},\"src\":{},\"off\":{},\"imm\":{}}}",
            insn.code, insn.dst, insn.src, insn.off, insn.imm
        );
    }
    let _ = write!(out, "],\"xdp_frags\":{},\"warnings\":[", frags(c));
    for (i, w) in c.warnings.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_string(&w.to_string()));
    }
    out.push_str("]}\n");
    out
}

fn c_array(expr: &str, insns: &[Insn], frags: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "/* pcap2bpf: {} */", expr.replace("*/", "* /"));
    if frags {
        let _ = writeln!(out, "/* {FRAGS_NOTE} */");
    }
    let _ = writeln!(out, "#include <linux/bpf.h>\n");
    let _ = writeln!(
        out,
        "static const struct bpf_insn pcap_filter[{}] = {{",
        insns.len()
    );
    for i in insns {
        let _ = writeln!(
            out,
            "\t{{ .code = 0x{:02x}, .dst_reg = {}, .src_reg = {}, .off = {}, .imm = {} }},",
            i.code, i.dst, i.src, i.off, i.imm
        );
    }
    out.push_str("};\n");
    out
}

fn rust_array(expr: &str, insns: &[Insn], frags: bool) -> String {
    let mut out = String::new();
    let expr = expr.replace('`', "'");
    if expr.contains('\n') {
        // Every line of a filter file inside the doc comment, as written.
        let _ = writeln!(out, "/// pcap2bpf:\n///\n/// ```text");
        for line in expr.lines().map(str::trim_end) {
            let _ = writeln!(out, "///{}{line}", if line.is_empty() { "" } else { " " });
        }
        let _ = writeln!(out, "/// ```");
    } else {
        let _ = writeln!(out, "/// pcap2bpf: `{expr}`");
    }
    if frags {
        let _ = writeln!(out, "///\n/// {FRAGS_NOTE}.");
    }
    let _ = writeln!(out, "pub const PCAP_FILTER: [[u8; 8]; {}] = [", insns.len());
    for i in insns {
        let b = i.to_bytes();
        let _ = writeln!(
            out,
            "    [{:#04x}, {:#04x}, {:#04x}, {:#04x}, {:#04x}, {:#04x}, {:#04x}, {:#04x}],",
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]
        );
    }
    out.push_str("];\n");
    out
}
