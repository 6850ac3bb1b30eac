//! The reader of the kernel's BTF against bpftool's raw dump of the same
//! file (the oracle): ids, sizes, member offsets, bitfields, enum values
//! and function prototypes agree; every type parses; broken blobs are
//! errors, never panics.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use bpf_builder::btf::KernelBtf;
use bpf_builder::btf::kernel::{KernelBtfError, Kind, Type};

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// One type of bpftool's raw dump.
#[derive(Debug)]
struct Dumped {
    kind: String,
    name: String,
    /// `key=value` words of the header line.
    attrs: HashMap<String, String>,
    /// Member, parameter and enumerator lines: name and `key=value` words.
    lines: Vec<(String, HashMap<String, String>)>,
}

impl Dumped {
    fn attr(&self, key: &str) -> u64 {
        attr(&self.attrs, key)
    }
}

fn attr(words: &HashMap<String, String>, key: &str) -> u64 {
    let v = &words[key];
    v.trim_end_matches("ULL")
        .trim_end_matches("LL")
        .parse::<i64>()
        .map(|v| v as u64)
        .or_else(|_| v.trim_end_matches("ULL").parse::<u64>())
        .unwrap_or_else(|e| panic!("{key}={v}: {e}"))
}

/// Splits `'name' k=v k=v` into the name and the words.
fn words(s: &str) -> (String, HashMap<String, String>) {
    let s = s.trim();
    let (name, rest) = match s.strip_prefix('\'') {
        Some(r) => {
            let end = r.find('\'').expect("closing quote");
            (r[..end].to_string(), &r[end + 1..])
        }
        None => (String::new(), s),
    };
    let kv = rest
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (name, kv)
}

/// bpftool's raw dump of `path`, by id; `None` (with the reason printed)
/// when the test cannot run here.
fn bpftool_dump(path: &str) -> Option<Vec<Option<Dumped>>> {
    if !Path::new(path).exists() {
        assert!(std::env::var_os("CI").is_none(), "CI: {path} is missing");
        eprintln!("skipped: {path} is missing (a kernel without BTF)");
        return None;
    }
    let out = match Command::new("bpftool")
        .args(["btf", "dump", "file", path, "format", "raw"])
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "CI: no bpftool: {e}");
            eprintln!("skipped: no bpftool ({e})");
            return None;
        }
    };
    assert!(out.status.success(), "bpftool: {:?}", out);
    let text = String::from_utf8(out.stdout).expect("UTF-8 dump");
    let mut types: Vec<Option<Dumped>> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('[') {
            let (id, rest) = rest.split_once("] ").expect("[id] KIND");
            let id: usize = id.parse().expect("id");
            let (kind, rest) = rest.split_once(' ').expect("KIND 'name'");
            let (name, attrs) = words(rest);
            if types.len() <= id {
                types.resize_with(id + 1, || None);
            }
            types[id] = Some(Dumped {
                kind: kind.to_string(),
                name,
                attrs,
                lines: Vec::new(),
            });
        } else if line.starts_with('\t') {
            let last = types
                .iter_mut()
                .rev()
                .find_map(|t| t.as_mut())
                .expect("a type");
            last.lines.push(words(line));
        }
    }
    Some(types)
}

/// The first id of `kind` named `name` in the dump.
fn dumped_id(dump: &[Option<Dumped>], kind: &str, name: &str) -> u32 {
    dump.iter()
        .position(|t| t.as_ref().is_some_and(|t| t.kind == kind && t.name == name))
        .unwrap_or_else(|| panic!("bpftool shows no {kind} '{name}'")) as u32
}

fn kind_of(name: &str) -> Kind {
    match name {
        "STRUCT" => Kind::Struct,
        "UNION" => Kind::Union,
        "ENUM" => Kind::Enum,
        "ENUM64" => Kind::Enum64,
        "FUNC" => Kind::Func,
        "TYPEDEF" => Kind::Typedef,
        k => panic!("kind {k} not sampled"),
    }
}

/// Checks type `id` against the dump: kind, name, size, and each member
/// (name, type, bit offset, bitfield size) or enumerator (name, value).
fn check_against_dump(btf: &KernelBtf, dump: &[Option<Dumped>], id: u32) {
    let d = dump[id as usize].as_ref().expect("dumped");
    let t = btf.get(id).expect("parsed");
    assert_eq!(t.kind().to_string(), d.kind, "[{id}]");
    let name = if d.name == "(anon)" { "" } else { &d.name };
    assert_eq!(btf.name_of(id), name, "[{id}]");
    match t {
        Type::Struct { members, .. } | Type::Union { members, .. } => {
            assert_eq!(
                btf.size_of(id).unwrap() as u64,
                d.attr("size"),
                "[{id}] size"
            );
            assert_eq!(members.len(), d.lines.len(), "[{id}] vlen");
            for (m, (dname, w)) in members.iter().zip(&d.lines) {
                let mname = btf.str(m.name);
                let dname = if dname == "(anon)" {
                    ""
                } else {
                    dname.as_str()
                };
                assert_eq!(mname, dname, "[{id}] member");
                assert_eq!(u64::from(m.ty), attr(w, "type_id"), "[{id}].{mname} type");
                assert_eq!(
                    u64::from(m.offset_bits),
                    attr(w, "bits_offset"),
                    "[{id}].{mname} offset"
                );
                let bits = w
                    .get("bitfield_size")
                    .map_or(0, |_| attr(w, "bitfield_size"));
                assert_eq!(u64::from(m.bitfield_size), bits, "[{id}].{mname} bitfield");
                if !mname.is_empty() {
                    // The lookup by name agrees with the raw member.
                    let found = btf.member(id, mname).unwrap();
                    assert_eq!(found.ty, m.ty);
                    assert_eq!(u64::from(found.offset_bits), attr(w, "bits_offset"));
                    assert_eq!(u64::from(found.bitfield_size), bits);
                }
            }
        }
        Type::Enum { values, .. } => {
            assert_eq!(
                btf.size_of(id).unwrap() as u64,
                d.attr("size"),
                "[{id}] size"
            );
            assert_eq!(values.len(), d.lines.len(), "[{id}] vlen");
            for (v, (dname, w)) in values.iter().zip(&d.lines) {
                assert_eq!(btf.str(v.name), dname, "[{id}] enumerator");
                assert_eq!(v.value, attr(w, "val"), "[{id}] {dname}");
            }
        }
        other => panic!("[{id}] {other:?} not sampled"),
    }
}

/// Where bpftool's dump puts member `name` of `id`, anonymous members
/// searched: (bit offset, bitfield size, type).
fn dumped_member(dump: &[Option<Dumped>], id: u32, name: &str) -> Option<(u64, u64, u64)> {
    let d = dump[id as usize].as_ref()?;
    for (mname, w) in &d.lines {
        if mname == name {
            let bits = w
                .get("bitfield_size")
                .map_or(0, |_| attr(w, "bitfield_size"));
            return Some((attr(w, "bits_offset"), bits, attr(w, "type_id")));
        }
    }
    for (mname, w) in &d.lines {
        if mname == "(anon)"
            && let Some((off, bits, ty)) = dumped_member(dump, attr(w, "type_id") as u32, name)
        {
            return Some((off + attr(w, "bits_offset"), bits, ty));
        }
    }
    None
}

fn vmlinux() -> Option<(KernelBtf, Vec<Option<Dumped>>)> {
    let dump = bpftool_dump(VMLINUX)?;
    let start = Instant::now();
    let btf = KernelBtf::vmlinux().expect("vmlinux BTF parses");
    eprintln!(
        "parsed {} types of {VMLINUX} in {:?}",
        btf.len(),
        start.elapsed()
    );
    let start = Instant::now();
    assert!(btf.type_by_name("task_struct", Kind::Struct).is_some());
    eprintln!(
        "first lookup by name (builds the name index) in {:?}",
        start.elapsed()
    );
    Some((btf, dump))
}

#[test]
fn every_type_of_vmlinux_parses_as_bpftool_counts() {
    let Some((btf, dump)) = vmlinux() else { return };
    assert_eq!(btf.len(), dump.len(), "types, void included");
    let mut ours: HashMap<String, usize> = HashMap::new();
    let mut theirs: HashMap<String, usize> = HashMap::new();
    for id in 1..btf.len() as u32 {
        *ours
            .entry(btf.get(id).unwrap().kind().to_string())
            .or_default() += 1;
        let d = dump[id as usize].as_ref().expect("bpftool shows every id");
        *theirs.entry(d.kind.clone()).or_default() += 1;
    }
    assert_eq!(ours, theirs, "types of each kind");
    // Every named type's name, as bpftool prints it.
    for id in 1..btf.len() as u32 {
        let d = dump[id as usize].as_ref().unwrap();
        if d.name != "(anon)" {
            assert_eq!(btf.name_of(id), d.name, "[{id}]");
        }
    }
}

#[test]
fn sampled_types_agree_with_bpftool() {
    let Some((btf, dump)) = vmlinux() else { return };
    let mut sample: Vec<(&str, String)> = [
        ("STRUCT", "task_struct"),
        ("STRUCT", "sk_buff"),
        ("STRUCT", "xdp_md"),
        ("STRUCT", "iphdr"),
        ("STRUCT", "tcphdr"),
    ]
    .into_iter()
    .map(|(k, n)| (k, n.to_string()))
    .collect();
    // The first named union and enum bpftool shows.
    for kind in ["UNION", "ENUM"] {
        let d = dump
            .iter()
            .flatten()
            .find(|t| t.kind == kind && t.name != "(anon)")
            .unwrap_or_else(|| panic!("no named {kind}"));
        sample.push((kind, d.name.clone()));
    }
    for (kind, name) in &sample {
        let id = btf
            .type_by_name(name, kind_of(kind))
            .unwrap_or_else(|| panic!("no {kind} {name}"));
        assert_eq!(id, dumped_id(&dump, kind, name), "{kind} {name}");
        check_against_dump(&btf, &dump, id);
    }
    // Every ENUM64 (anonymous ones included), if the kernel has any.
    let enum64: Vec<u32> = (0..dump.len() as u32)
        .filter(|&id| {
            dump[id as usize]
                .as_ref()
                .is_some_and(|d| d.kind == "ENUM64")
        })
        .collect();
    if enum64.is_empty() {
        eprintln!("this kernel's BTF has no ENUM64");
    }
    for id in enum64 {
        check_against_dump(&btf, &dump, id);
    }
    // Every struct and union, member by member.
    for id in 1..btf.len() as u32 {
        if matches!(btf.get(id), Some(Type::Struct { .. } | Type::Union { .. })) {
            check_against_dump(&btf, &dump, id);
        }
    }
}

#[test]
fn members_through_anonymous_members_and_nested_structs() {
    let Some((btf, dump)) = vmlinux() else { return };
    let skb = btf.type_by_name("sk_buff", Kind::Struct).unwrap();
    // `next`, `len`, `protocol` and `mark` sit in anonymous unions and
    // structs of sk_buff on current kernels; bitfields too (`pkt_type`).
    for name in [
        "next", "dev", "len", "protocol", "mark", "pkt_type", "cloned",
    ] {
        let Some((off, bits, ty)) = dumped_member(&dump, skb, name) else {
            eprintln!("sk_buff has no {name} on this kernel");
            continue;
        };
        let m = btf.member(skb, name).unwrap();
        assert_eq!(
            (
                u64::from(m.offset_bits),
                u64::from(m.bitfield_size),
                u64::from(m.ty)
            ),
            (off, bits, ty),
            "sk_buff.{name}"
        );
    }
    let iphdr = btf.type_by_name("iphdr", Kind::Struct).unwrap();
    let ihl = btf.member(iphdr, "ihl").unwrap();
    assert_eq!(ihl.bitfield_size, 4);
    // saddr is in an anonymous union of iphdr (6.x kernels).
    let saddr = btf.member(iphdr, "saddr").unwrap();
    assert_eq!(
        (saddr.byte_offset(), btf.size_of(saddr.ty).unwrap()),
        (12, 4)
    );

    // A path through a nested struct: task_struct.se.vruntime.
    let task = btf.type_by_name("task_struct", Kind::Struct).unwrap();
    let (se_off, _, se_ty) = dumped_member(&dump, task, "se").unwrap();
    let (vr_off, _, vr_ty) =
        dumped_member(&dump, btf.resolve(se_ty as u32).unwrap(), "vruntime").unwrap();
    let path = btf.member_path(task, &["se", "vruntime"]).unwrap();
    assert_eq!(u64::from(path.offset_bits), se_off + vr_off);
    assert_eq!(u64::from(path.ty), vr_ty);
    assert_eq!(btf.size_of(path.ty).unwrap(), 8);
    let comm = btf.member(task, "comm").unwrap();
    assert_eq!(btf.size_of(comm.ty).unwrap(), 16, "TASK_COMM_LEN");
    // Through a pointer is not a path: real_parent is a pointer.
    let err = btf.member_path(task, &["real_parent", "tgid"]).unwrap_err();
    assert!(matches!(err, KernelBtfError::NotComposite { .. }), "{err}");
    let parent = btf.member(task, "real_parent").unwrap();
    let Some(Type::Ptr(to)) = btf.get(btf.resolve(parent.ty).unwrap()) else {
        panic!("real_parent is not a pointer")
    };
    let (tgid_off, _, _) = dumped_member(&dump, btf.resolve(*to).unwrap(), "tgid").unwrap();
    let tgid = btf.member(*to, "tgid").unwrap();
    assert_eq!(u64::from(tgid.offset_bits), tgid_off);
    assert_eq!(btf.size_of(parent.ty).unwrap(), 8);
    assert!(matches!(
        btf.member(task, "no_such_member"),
        Err(KernelBtfError::NoMember { .. })
    ));
}

#[test]
fn function_prototypes_agree_with_bpftool() {
    let Some((btf, dump)) = vmlinux() else { return };
    for name in ["tcp_v4_rcv", "do_sys_openat2", "vfs_read"] {
        let Ok(f) = btf.func(name) else {
            eprintln!("this kernel's BTF has no {name}");
            continue;
        };
        assert_eq!(f.id, dumped_id(&dump, "FUNC", name));
        let d = dump[f.id as usize].as_ref().unwrap();
        assert_eq!(u64::from(f.proto), d.attr("type_id"), "{name}");
        let linkage = format!("{:?}", f.linkage).to_lowercase();
        assert_eq!(d.attrs["linkage"], linkage, "{name}");
        let p = dump[f.proto as usize].as_ref().unwrap();
        assert_eq!(p.kind, "FUNC_PROTO");
        assert_eq!(u64::from(f.ret), p.attr("ret_type_id"), "{name} returns");
        let params: Vec<(String, u64)> = f
            .params
            .iter()
            .map(|p| (p.name.clone(), u64::from(p.ty)))
            .collect();
        let theirs: Vec<(String, u64)> = p
            .lines
            .iter()
            .map(|(n, w)| (n.clone(), attr(w, "type_id")))
            .collect();
        assert_eq!(params, theirs, "{name} parameters");
        assert!(!f.variadic);
        assert_eq!(
            bpf_builder::btf::find_func(&std::fs::read(VMLINUX).unwrap(), name)
                .unwrap()
                .map(|e| e.id),
            Some(f.id),
            "find_func reads with the same reader"
        );
    }
    // tcp_v4_rcv(struct sk_buff *skb) -> int, whatever its ids.
    let f = btf.func("tcp_v4_rcv").expect("tcp_v4_rcv");
    assert_eq!(f.params.len(), 1);
    assert_eq!(f.params[0].name, "skb");
    let Some(Type::Ptr(to)) = btf.get(f.params[0].ty) else {
        panic!("skb is not a pointer")
    };
    assert_eq!(btf.name_of(btf.resolve(*to).unwrap()), "sk_buff");
    assert_eq!(btf.name_of(btf.resolve(f.ret).unwrap()), "int");
    assert!(matches!(
        btf.func("no_such_function_here"),
        Err(KernelBtfError::NotFound { .. })
    ));
}

#[test]
fn module_split_btf_parses() {
    let module = std::fs::read_dir("/sys/kernel/btf").ok().and_then(|d| {
        d.flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n != "vmlinux")
    });
    // A kernel without modules (this project's CI machines) has no split
    // BTF: Debian's kernel in a VM has, for the veth module it loads.
    let bpftool = std::path::Path::new("/usr/sbin/bpftool");
    if !testbed::vm::run_here_or_in_vm_with(
        "module BTF (/sys/kernel/btf/MODULE)",
        module.is_some(),
        "module_split_btf_parses",
        |vm| vm.file(bpftool, "/usr/sbin/bpftool"),
    ) {
        return;
    }
    let module = module.expect("module BTF in the VM (veth)");
    let path = format!("/sys/kernel/btf/{module}");
    let Some(dump) = bpftool_dump_split(&path) else {
        return;
    };
    let vmlinux = Arc::new(KernelBtf::vmlinux().unwrap());
    let btf = KernelBtf::module_over(&module, vmlinux.clone()).unwrap();
    assert_eq!(btf.first_own_id() as usize, vmlinux.len());
    assert_eq!(btf.len(), dump.len(), "{module}: types, vmlinux's included");
    for id in btf.first_own_id()..btf.len() as u32 {
        let d = dump[id as usize].as_ref().unwrap();
        assert_eq!(btf.get(id).unwrap().kind().to_string(), d.kind, "[{id}]");
        if d.name != "(anon)" {
            assert_eq!(btf.name_of(id), d.name, "{module} [{id}]");
        }
        if matches!(btf.get(id), Some(Type::Struct { .. } | Type::Union { .. })) {
            check_against_dump(&btf, &dump, id);
        }
    }
}

/// bpftool's dump of a module's split BTF (ids continue after vmlinux's).
fn bpftool_dump_split(path: &str) -> Option<Vec<Option<Dumped>>> {
    // bpftool finds vmlinux as the base of a module's BTF by itself.
    bpftool_dump(path)
}

#[test]
fn truncated_and_cut_blobs_are_errors_not_panics() {
    let Ok(raw) = std::fs::read(VMLINUX) else {
        assert!(std::env::var_os("CI").is_none(), "CI: no {VMLINUX}");
        eprintln!("skipped: no {VMLINUX}");
        return;
    };
    // The blob cut anywhere: its sections run past the end.
    let step = raw.len() / 509;
    for cut in (0..256).chain((256..raw.len()).step_by(step)) {
        assert!(KernelBtf::parse(&raw[..cut]).is_err(), "cut at {cut}");
    }
    // The type section cut short (the header says so, the strings stay):
    // types end in the middle or refer to types cut away, so nearly every
    // cut is an error; none may panic.
    let type_len = u32::from_ne_bytes(raw[12..16].try_into().unwrap()) as usize;
    let mut blob = raw.clone();
    let mut parsed = 0;
    let lens = (0..3000).chain((3000..type_len).step_by(type_len / 97));
    for len in lens {
        blob[12..16].copy_from_slice(&(len as u32).to_ne_bytes());
        if KernelBtf::parse(&blob).is_ok() {
            parsed += 1;
        }
    }
    eprintln!("{parsed} cuts of the type section happened to be whole BTF");
    // Garbage in the header or the first types.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..2000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut b = raw[..4096.min(raw.len())].to_vec();
        let at = (seed % b.len() as u64) as usize;
        b[at] ^= (seed >> 32) as u8 | 1;
        b[12..16].copy_from_slice(&2000u32.to_ne_bytes());
        b[16..20].copy_from_slice(&2000u32.to_ne_bytes());
        let str_len = (b.len() - 2024) as u32;
        b[20..24].copy_from_slice(&str_len.to_ne_bytes());
        *b.last_mut().unwrap() = 0; // the strings end with a NUL
        let _ = KernelBtf::parse(&b);
    }
}
