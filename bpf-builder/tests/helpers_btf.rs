//! `Helper` against the running kernel: the kernel's own BTF
//! (`/sys/kernel/btf/vmlinux`) describes `enum bpf_func_id`, so every helper
//! it lists must be in our table with the same id and name, and no other.

use bpf_builder::helpers::Helper;

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// The enumerators (name, value) of the BTF enum called `wanted`.
fn btf_enum(btf: &[u8], wanted: &str) -> Option<Vec<(String, i64)>> {
    let u32_at = |o: usize| u32::from_le_bytes(btf[o..o + 4].try_into().unwrap());
    assert_eq!(&btf[..2], &[0x9f, 0xeb], "BTF magic (little endian)");
    let hdr_len = u32_at(4) as usize;
    let type_start = hdr_len + u32_at(8) as usize;
    let type_end = type_start + u32_at(12) as usize;
    let str_start = hdr_len + u32_at(16) as usize;
    let name = |off: u32| -> String {
        let s = &btf[str_start + off as usize..];
        String::from_utf8_lossy(&s[..s.iter().position(|&b| b == 0).unwrap()]).into_owned()
    };
    let mut pos = type_start;
    while pos < type_end {
        let name_off = u32_at(pos);
        let info = u32_at(pos + 4);
        let vlen = (info & 0xffff) as usize;
        let kind = (info >> 24) & 0x1f;
        pos += 12;
        // Bytes that follow the common header, per kind (see btf.rst).
        let extra = match kind {
            1 => 4,             // INT
            3 => 12,            // ARRAY
            4 | 5 => vlen * 12, // STRUCT, UNION
            6 => vlen * 8,      // ENUM
            13 => vlen * 8,     // FUNC_PROTO
            14 => 4,            // VAR
            15 => vlen * 12,    // DATASEC
            17 => 4,            // DECL_TAG
            19 => vlen * 12,    // ENUM64
            _ => 0,
        };
        if kind == 6 && name(name_off) == wanted {
            let values = (0..vlen)
                .map(|i| {
                    let e = pos + i * 8;
                    (name(u32_at(e)), i64::from(u32_at(e + 4) as i32))
                })
                .collect();
            return Some(values);
        }
        pos += extra;
    }
    None
}

#[test]
fn helpers_match_the_running_kernel() {
    let btf = match std::fs::read(VMLINUX) {
        Ok(b) => b,
        Err(e) if std::env::var_os("CI").is_some() => panic!("cannot read {VMLINUX}: {e}"),
        Err(e) => {
            eprintln!("skipping: cannot read {VMLINUX}: {e}");
            return;
        }
    };
    let values = btf_enum(&btf, "bpf_func_id").expect("enum bpf_func_id in kernel BTF");
    let mut count = 0;
    for (name, id) in values {
        let Some(short) = name.strip_prefix("BPF_FUNC_") else {
            continue; // __BPF_FUNC_MAX_ID
        };
        if short == "unspec" {
            continue;
        }
        let helper = Helper::from_id(id as i32)
            .unwrap_or_else(|| panic!("kernel helper {name} = {id} missing"));
        assert_eq!(helper.name(), format!("bpf_{short}"), "id {id}");
        assert_eq!(Helper::from_name(short), Some(helper));
        count += 1;
    }
    assert_eq!(Helper::ALL.len(), count, "helpers the kernel does not list");
}

#[test]
fn well_known_helpers() {
    // Ids from include/uapi/linux/bpf.h.
    assert_eq!(Helper::MapLookupElem.id(), 1);
    assert_eq!(Helper::MapLookupElem.name(), "bpf_map_lookup_elem");
    assert_eq!(Helper::TailCall.id(), 12);
    assert_eq!(Helper::RedirectMap.id(), 51);
    assert_eq!(Helper::RingbufOutput.id(), 130);
    assert_eq!(Helper::CgrpStorageDelete.id(), 211);
    assert_eq!(Helper::from_id(0), None);
    assert_eq!(Helper::from_id(-1), None);
    assert_eq!(Helper::from_id(212), None);
    assert_eq!(
        Helper::from_name("bpf_ktime_get_ns"),
        Some(Helper::KtimeGetNs)
    );
    assert_eq!(Helper::from_name("ktime_get_ns"), Some(Helper::KtimeGetNs));
    assert_eq!(Helper::from_name("no_such_helper"), None);
}
