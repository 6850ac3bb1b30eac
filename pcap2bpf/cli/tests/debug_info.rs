//! Generated filters carry the expression as BTF line info: bpftool shows
//! it beside the instructions, and `--emit elf` objects load with bpftool.

use std::path::PathBuf;
use std::process::Command;

use pcap2bpf::{CompileOptions, LinkType, Tables, Target, compile};

fn bpftool(args: &[&str]) -> Option<std::process::Output> {
    Command::new("bpftool").args(args).output().ok()
}

fn have_bpftool() -> bool {
    if bpftool(&["version"]).is_some_and(|o| o.status.success()) {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "bpftool is needed under CI"
    );
    eprintln!("skipping: no bpftool");
    false
}

#[test]
fn bpftool_shows_the_filter_beside_the_instructions() {
    if !testbed::bpf_privileged("bpftool linum test") || !have_bpftool() {
        return;
    }
    let expr = "tcp dst port 443 and host 10.1.2.3";
    let tables = Tables::default();
    let c = compile(
        expr,
        &CompileOptions::new(LinkType::En10mb, Target::Xdp, &tables).verdicts(2, 1),
    )
    .unwrap();
    let loaded = c.object.load().unwrap();
    let id = loaded.program(c.program).info().unwrap().id.to_string();
    let o = bpftool(&["prog", "dump", "xlated", "id", &id, "linum"]).unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    // The code of each primitive is headed by the expression and the
    // column of its operand (443 at 14, 10.1.2.3 at 27).
    for col in ["line_col:14", "line_col:27"] {
        let line = format!("; {expr} [file:filter line_num:1 {col}]");
        assert!(text.contains(&line), "{line:?} missing from:\n{text}");
    }
}

#[test]
fn emitted_elf_loads_with_bpftool() {
    if !testbed::bpf_privileged("bpftool load test") || !have_bpftool() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("pcap2bpf-elf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let obj = dir.join("filter.o");
    let o = Command::new(env!("CARGO_BIN_EXE_pcap2bpf"))
        .args(["compile", "--emit", "elf", "-o"])
        .arg(&obj)
        .args(["udp", "port", "53", "or", "vlan"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    bpf_builder::sys::bpf::ensure_bpffs(std::path::Path::new("/sys/fs/bpf")).unwrap();
    let pin = PathBuf::from(format!("/sys/fs/bpf/pcap2bpf-elf-{}", std::process::id()));
    struct Unpin(PathBuf, PathBuf);
    impl Drop for Unpin {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }
    let _unpin = Unpin(pin.clone(), dir.clone());
    let o = bpftool(&["prog", "load", obj.to_str().unwrap(), pin.to_str().unwrap()]).unwrap();
    assert!(
        o.status.success(),
        "bpftool prog load: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = bpftool(&["prog", "show", "pinned", pin.to_str().unwrap()]).unwrap();
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(
        shown.contains("xdp") && shown.contains("pcap_filter"),
        "{shown}"
    );
}
