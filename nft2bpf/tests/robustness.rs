//! Bad input never panics and never exhausts the stack: random bytes,
//! every truncation of the example ruleset, random edits of the good
//! rulesets, and extreme nesting and sizes all end in a checked ruleset
//! or in errors that render. `NFT2BPF_SEED=N` tries other random inputs.

mod common;

use common::{nft_files, rulesets};
use nft2bpf::syntax::MemLoader;
use nft2bpf::{SourceMap, check_ruleset};

/// The seed of the random inputs.
fn seed() -> u64 {
    std::env::var("NFT2BPF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12)
}

/// The include every_feature.nft makes, for a [`MemLoader`].
fn loader() -> MemLoader {
    let sets = std::fs::read_to_string(rulesets("every_feature_sets.nft")).unwrap();
    MemLoader::new().with("every_feature_sets.nft", sets)
}

/// Parses and checks `text`; renders the errors. Returns whether it was
/// accepted. A panic fails the test.
fn run(text: &str) -> bool {
    let mut map = SourceMap::new();
    let file = map.add(
        "fuzz.nft",
        Some(std::path::Path::new("fuzz.nft")),
        text,
        None,
    );
    match check_ruleset(&mut map, file, &mut loader()) {
        Ok(r) => {
            let _ = r.to_string();
            true
        }
        Err(e) => {
            let rendered = e.render(&map);
            assert!(rendered.contains(": error: "), "{rendered}");
            false
        }
    }
}

#[test]
fn random_bytes_are_errors() {
    let mut rng = testbed::Rng::new(seed());
    for _ in 0..3000 {
        let len = rng.below(300) as usize;
        let bytes = rng.bytes(len);
        run(&String::from_utf8_lossy(&bytes));
        // Bytes drawn from the characters of the language, more likely to
        // get past the scanner.
        let alphabet = b"abcdefipvtcpudp0123456789:./-{}()[];,@$=!<>&|^*\"# \n\t";
        let text: String = (0..len).map(|_| char::from(rng.pick(alphabet))).collect();
        run(&text);
    }
}

#[test]
fn every_truncation_of_the_example_is_handled() {
    let text = std::fs::read_to_string(rulesets("every_feature.nft")).unwrap();
    assert!(run(&text), "the whole file is good");
    for (end, _) in text.char_indices() {
        run(&text[..end]);
    }
}

#[test]
fn random_edits_of_good_rulesets_are_handled() {
    let mut rng = testbed::Rng::new(seed());
    let mut texts = vec![std::fs::read_to_string(rulesets("every_feature.nft")).unwrap()];
    for p in nft_files(&rulesets("good")) {
        texts.push(std::fs::read_to_string(p).unwrap());
    }
    let words = [
        "{", "}", "(", ")", ";", "\n", ",", ".", ":", "-", "/", "@s", "$x", "ip", "saddr", "tcp",
        "dport", "vlan", "id", "meta", "l4proto", "accept", "jump", "c", "set", "map", "vmap",
        "counter", "limit", "rate", "quota", "define", "include", "table", "chain", "10.0.0.1",
        "::1", "22", "0xff", "\"x\"", "type", "hook", "flags", "interval", "elements", "=", "!=",
        "&", "|", "ct", "fib", "state",
    ];
    let mut accepted = 0;
    for _ in 0..3000 {
        let base = &texts[rng.below(texts.len() as u64) as usize];
        let mut pieces: Vec<&str> = base.split(' ').collect();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(pieces.len() as u64) as usize;
            match rng.below(3) {
                0 => {
                    pieces.remove(at);
                }
                1 => pieces.insert(at, rng.pick(&words)),
                _ => pieces[at] = rng.pick(&words),
            }
            if pieces.is_empty() {
                break;
            }
        }
        if run(&pieces.join(" ")) {
            accepted += 1;
        }
    }
    // Some edits keep a ruleset valid (a changed number, a dropped
    // counter): the checks run to the end on those too.
    assert!(accepted > 0);
}

#[test]
fn extreme_nesting_and_sizes_do_not_exhaust_the_stack() {
    let rule = |r: &str| format!("table netdev t {{\n chain c {{\n {r}\n }}\n}}\n");
    let n = 200_000;
    let cases = [
        rule(&format!("tcp dport {}22{}", "(".repeat(n), ")".repeat(n))),
        rule(&format!("tcp dport {}22{}", "{ ".repeat(n), " }".repeat(n))),
        rule(&format!("tcp flags {}syn", "syn | ".repeat(n))),
        rule(&format!("ip saddr {}", "1.2.3.4 . ".repeat(n) + "1.2.3.4")),
        format!(
            "define v0 = 1\n{}",
            (1..20_000)
                .map(|i| format!("define v{i} = {{ $v{} }}\n", i - 1))
                .collect::<String>()
        ),
        format!(
            "define v0 = 1\n{}",
            (1..20_000)
                .map(|i| format!("define v{i} = $v{} | 1\n", i - 1))
                .collect::<String>()
        ),
        "table netdev t {\n".repeat(n),
        "include \"x\"\n".repeat(10),
    ];
    for text in &cases {
        assert!(!run(text), "{}", &text[..80.min(text.len())]);
    }
    // Big, flat inputs are fine.
    assert!(run(&rule(&format!(
        "tcp flags {}",
        "syn,".repeat(n) + "ack"
    ))));
    let elements: Vec<String> = (0..50_000u32)
        .map(|i| format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255))
        .collect();
    let big = format!(
        "table netdev t {{\n set s {{ type ipv4_addr; elements = {{ {} }} }}\n chain c {{\n type filter hook ingress device eth0 priority 0;\n{}\n }}\n}}\n",
        elements.join(", "),
        (0..5_000)
            .map(|i| format!("  tcp dport {i} ip saddr @s counter accept\n"))
            .collect::<String>()
    );
    assert!(run(&big));
    // Thousands of chains jumping one to the next: the graph walk keeps
    // its own stack (the kernel's depth limit makes it an error).
    let chains: String = (0..20_000)
        .map(|i| format!(" chain c{i} {{ jump c{}; }}\n", i + 1))
        .collect();
    let deep = format!(
        "table netdev t {{\n{chains} chain c20000 {{ accept; }}\n chain b {{\n type filter hook ingress device eth0 priority 0;\n jump c0\n }}\n}}\n"
    );
    assert!(!run(&deep));
}

#[test]
fn errors_at_a_carriage_return_render() {
    // Found by the fuzz target: a fault whose span starts at a line's
    // `\r`, which the shown line drops, put the caret past the line.
    for text in [
        "table netdev t {\n\t\r\r\0\r\n}\n",
        "table netdev t {\r\n\tchain c {\r\n\t\tip saddr tcp\r\n\t}\r\n}\r\n",
        "table netdev t {\r",
    ] {
        assert!(!run(text), "{text:?} is refused");
    }
}
