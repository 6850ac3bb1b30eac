//! The context offsets of `bpf_builder::ctx` are the kernel's: a C
//! program built against the system's `<linux/bpf.h>` prints `offsetof`
//! and `sizeof` for every field, and the test compares. Without a C
//! compiler or the kernel headers the test fails when `CI` is set and is
//! skipped elsewhere.

use std::process::Command;

use bpf_builder::ctx::{sk_buff, xdp_md};

/// (C struct, C field, our offset) for every field of both contexts.
fn fields() -> Vec<(&'static str, &'static str, i16)> {
    let xdp = [
        ("data", xdp_md::DATA),
        ("data_end", xdp_md::DATA_END),
        ("data_meta", xdp_md::DATA_META),
        ("ingress_ifindex", xdp_md::INGRESS_IFINDEX),
        ("rx_queue_index", xdp_md::RX_QUEUE_INDEX),
        ("egress_ifindex", xdp_md::EGRESS_IFINDEX),
    ];
    let skb = [
        ("len", sk_buff::LEN),
        ("pkt_type", sk_buff::PKT_TYPE),
        ("mark", sk_buff::MARK),
        ("queue_mapping", sk_buff::QUEUE_MAPPING),
        ("protocol", sk_buff::PROTOCOL),
        ("vlan_present", sk_buff::VLAN_PRESENT),
        ("vlan_tci", sk_buff::VLAN_TCI),
        ("vlan_proto", sk_buff::VLAN_PROTO),
        ("priority", sk_buff::PRIORITY),
        ("ingress_ifindex", sk_buff::INGRESS_IFINDEX),
        ("ifindex", sk_buff::IFINDEX),
        ("tc_index", sk_buff::TC_INDEX),
        ("cb", sk_buff::CB),
        ("hash", sk_buff::HASH),
        ("tc_classid", sk_buff::TC_CLASSID),
        ("data", sk_buff::DATA),
        ("data_end", sk_buff::DATA_END),
        ("napi_id", sk_buff::NAPI_ID),
        ("family", sk_buff::FAMILY),
        ("remote_ip4", sk_buff::REMOTE_IP4),
        ("local_ip4", sk_buff::LOCAL_IP4),
        ("remote_ip6", sk_buff::REMOTE_IP6),
        ("local_ip6", sk_buff::LOCAL_IP6),
        ("remote_port", sk_buff::REMOTE_PORT),
        ("local_port", sk_buff::LOCAL_PORT),
        ("data_meta", sk_buff::DATA_META),
        ("flow_keys", sk_buff::FLOW_KEYS),
        ("tstamp", sk_buff::TSTAMP),
        ("wire_len", sk_buff::WIRE_LEN),
        ("gso_segs", sk_buff::GSO_SEGS),
        ("sk", sk_buff::SK),
        ("gso_size", sk_buff::GSO_SIZE),
        ("tstamp_type", sk_buff::TSTAMP_TYPE),
        ("hwtstamp", sk_buff::HWTSTAMP),
    ];
    let mut all: Vec<_> = xdp.iter().map(|&(f, o)| ("xdp_md", f, o)).collect();
    all.extend(skb.iter().map(|&(f, o)| ("__sk_buff", f, o)));
    all
}

/// A C program printing `struct.field offset` for each of `fields` and
/// `struct.sizeof size` for both structs.
fn program(fields: &[(&str, &str, i16)]) -> String {
    let mut c = String::from(
        "#include <stddef.h>\n#include <stdio.h>\n#include <linux/bpf.h>\nint main(void) {\n",
    );
    for (s, f, _) in fields {
        c += &format!("  printf(\"{s}.{f} %zu\\n\", offsetof(struct {s}, {f}));\n");
    }
    for s in ["xdp_md", "__sk_buff"] {
        c += &format!("  printf(\"{s}.sizeof %zu\\n\", sizeof(struct {s}));\n");
    }
    c + "  return 0;\n}\n"
}

/// Builds and runs `source`; `None` (after saying why) when there is no C
/// compiler or no kernel headers.
fn run_c(source: &str) -> Option<String> {
    let dir = std::env::temp_dir().join(format!("bpfb_ctx_layout_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (src, bin) = (dir.join("layout.c"), dir.join("layout"));
    std::fs::write(&src, source).unwrap();
    let built = Command::new("cc").arg(&src).arg("-o").arg(&bin).output();
    let out = match built {
        Ok(o) if o.status.success() => Command::new(&bin).output().unwrap(),
        other => {
            let _ = std::fs::remove_dir_all(&dir);
            let why = match other {
                Ok(o) => format!(
                    "cc cannot build against <linux/bpf.h> (install linux-libc-dev): {}",
                    String::from_utf8_lossy(&o.stderr)
                ),
                Err(e) => format!("no C compiler (cc): {e}"),
            };
            if std::env::var_os("CI").is_some() {
                panic!("{why}");
            }
            eprintln!("skipping: {why}");
            return None;
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success());
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn context_offsets_are_the_kernel_headers() {
    let fields = fields();
    let Some(out) = run_c(&program(&fields)) else {
        return;
    };
    let headers: Vec<(&str, usize)> = out
        .lines()
        .map(|l| {
            let (name, n) = l.split_once(' ').unwrap();
            (name, n.parse().unwrap())
        })
        .collect();
    let mut ours: Vec<(String, usize)> = fields
        .iter()
        .map(|&(s, f, o)| (format!("{s}.{f}"), o as usize))
        .collect();
    ours.push(("xdp_md.sizeof".into(), xdp_md::SIZE));
    ours.push(("__sk_buff.sizeof".into(), sk_buff::SIZE));
    let ours: Vec<(&str, usize)> = ours.iter().map(|(n, o)| (n.as_str(), *o)).collect();
    assert_eq!(ours, headers);
}
