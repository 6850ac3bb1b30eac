//! The parser and checker must answer every input with a filter or a
//! `CompileError` whose caret renders, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pcap2bpf::{LinkType, Options, Tables, parse_with};

fuzz_target!(|data: &[u8]| {
    let Ok(expr) = std::str::from_utf8(data) else {
        return;
    };
    let tables = Tables::default();
    for link in [LinkType::En10mb, LinkType::Raw, LinkType::LinuxSll, LinkType::LinuxSll2] {
        let opts = Options::new(link, &tables).netmask(Some(0xffff_ff00));
        if let Err(e) = parse_with(expr, opts) {
            let _ = e.render(expr);
        }
    }
});
