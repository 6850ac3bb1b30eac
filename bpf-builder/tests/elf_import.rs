//! A clang-built object, compiled here from C, imported, extended with a
//! generated program that reads the C program's map, loaded and run.

mod common;

use std::path::PathBuf;
use std::process::Command;

use bpf_builder::asm::{Annotation, Asm};
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{JmpOp, Reg::*, Size};
use bpf_builder::object::{Object, ProgramType};
use bpf_builder::run::TestRun;
use common::require_bpf;

const SOURCE: &str = r#"
#define SEC(n) __attribute__((section(n), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
typedef unsigned int __u32;
typedef unsigned long long __u64;
struct xdp_md;
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *) 1;

struct {
    __uint(type, 2 /* BPF_MAP_TYPE_ARRAY */);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} counter SEC(".maps");

const volatile __u32 bump = 3;
__u64 seen;

static __attribute__((noinline)) __u64 add(__u64 x)
{
    return x + bump;
}

SEC("xdp")
int count(struct xdp_md *ctx)
{
    __u32 key = 0;
    __u64 *v = bpf_map_lookup_elem(&counter, &key);
    if (v)
        *v = add(*v);
    seen++;
    return 2;
}

SEC("xdp.frags")
int jumbo(struct xdp_md *ctx)
{
    return 2;
}

SEC("xdp.frags/cpumap")
int cpu_jumbo(struct xdp_md *ctx)
{
    return 2;
}

char LICENSE[] SEC("license") = "GPL";
"#;

/// Files removed on drop, even when the test fails.
struct Scratch(Vec<PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn compile() -> (Vec<u8>, Scratch) {
    let dir = std::env::temp_dir();
    let c = dir.join(format!("bpfb_import_{}.c", std::process::id()));
    let o = c.with_extension("o");
    let scratch = Scratch(vec![c.clone(), o.clone()]);
    std::fs::write(&c, SOURCE).unwrap();
    let out = Command::new("clang")
        .args(["-O2", "-g", "-target", "bpf", "-c"])
        .arg(&c)
        .arg("-o")
        .arg(&o)
        .output()
        .expect("clang is installed");
    assert!(
        out.status.success(),
        "clang failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (std::fs::read(&o).unwrap(), scratch)
}

#[test]
fn clang_object_is_imported_extended_and_run() {
    let (bytes, _scratch) = compile();
    let mut o = Object::from_elf(&bytes).expect("import the clang object");

    // What the C file defines.
    let counter = o.map_by_name("counter").expect("the BTF-defined map");
    assert_eq!((o.map(counter).key_size, o.map(counter).value_size), (4, 8));
    let rodata = o.map_by_name(".rodata").expect(".rodata");
    assert_eq!(o.map(rodata).value_size, 4);
    assert!(o.map(rodata).freeze, "read-only data is frozen");
    let bss = o.map_by_name(".bss").expect(".bss");
    let count = o.program_by_name("count").expect("the C program");
    assert_eq!(o.program(count).prog_type, ProgramType::Xdp);
    assert!(!o.program(count).xdp_frags);
    // libbpf's fragment-support sections.
    for (name, prog_type) in [
        ("jumbo", ProgramType::Xdp),
        ("cpu_jumbo", ProgramType::XdpCpumap),
    ] {
        let p = o.program(o.program_by_name(name).expect(name));
        assert_eq!((p.prog_type, p.xdp_frags), (prog_type, true), "{name}");
    }
    assert!(
        o.functions().any(|(_, f)| f.name == "add"),
        "the static function in .text"
    );
    // clang's line info became annotations: the C source lines.
    let layout = o.layout(count).unwrap();
    let lines: Vec<String> = (0..layout.insns.len())
        .filter_map(|pc| layout.annotation_at(&o, pc))
        .map(|a| a.text.to_string())
        .collect();
    assert!(lines.iter().any(|l| l.contains("seen++")), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("return x + bump")),
        "{lines:?}"
    );

    // A generated program: return counter[0] (0 when missing).
    let mut a = Asm::new();
    let missing = a.new_label();
    a.set_source(Annotation::new("return counter[0]"));
    a.st(Size::W, R10, -4, 0);
    a.ld_map_fd(R1, counter);
    a.mov64(R2, R10);
    a.add64(R2, -4);
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, missing);
    a.ldx(Size::DW, R0, R0, 0);
    a.exit();
    a.bind(missing);
    a.mov64(R0, 0);
    a.exit();
    let read = o
        .add_program(
            "read_counter",
            ProgramType::SocketFilter,
            a.finish().unwrap(),
        )
        .unwrap();

    if !require_bpf() {
        return;
    }
    let loaded = o.load().expect("the extended object loads");
    let run = loaded
        .program(count)
        .test_run(&TestRun::new(&[0u8; 64]).repeat(4))
        .unwrap();
    assert_eq!(run.retval, 2, "XDP_PASS");
    let got = loaded
        .program(read)
        .test_run(&TestRun::new(&[0u8; 64]))
        .unwrap();
    assert_eq!(got.retval, 4 * 3, "four runs, each adding bump = 3");
    let seen = loaded
        .map(bss)
        .lookup(&0u32.to_ne_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(u64::from_ne_bytes(seen[..8].try_into().unwrap()), 4);
}
