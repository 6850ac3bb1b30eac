//! Snapshot tests live in `tests/`; this holds what they share.

use pcap2bpf::Tables;

/// The name tables every filter snapshot compiles with.
pub fn tables() -> Tables {
    Tables::new()
        .with_services("http 80/tcp\ndomain 53/tcp\ndomain 53/udp\n")
        .with_protocols("tcp 6\nudp 17\n")
}

/// A snapshot name for a filter: `prefix`, then the filter's text with
/// symbols spelled out.
pub fn snapshot_name(prefix: &str, expr: &str) -> String {
    let mut out = format!("{prefix}__");
    if expr.is_empty() {
        return out + "empty";
    }
    for c in expr.chars() {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' => out.push(c),
            ' ' | '.' | ':' | '-' => out.push('_'),
            '&' => out.push_str("and"),
            '|' => out.push_str("or"),
            '<' => out.push_str("lt"),
            '>' => out.push_str("gt"),
            '=' => out.push_str("eq"),
            '!' => out.push_str("not"),
            '/' => out.push_str("div"),
            '%' => out.push_str("mod"),
            '[' | ']' | '(' | ')' | '\\' => out.push('_'),
            _ => out.push('x'),
        }
    }
    out
}
