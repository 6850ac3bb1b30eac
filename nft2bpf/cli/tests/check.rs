//! `nft2bpf check`: a good ruleset's summary on stdout and exit 0; a bad
//! one's errors on stderr, exactly as the library renders them (each line
//! after `nft2bpf: `, tabs kept so carets stay under their text), and
//! exit 1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The test rulesets of the `nft2bpf` library.
fn rulesets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/rulesets")
}

/// `nft2bpf check FILE`, run from the library's directory so that paths
/// print as its tests pin them (`tests/rulesets/...`).
fn check(file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nft2bpf"))
        .arg("check")
        .arg(file)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .expect("nft2bpf runs")
}

#[test]
fn a_good_ruleset_is_summarised() {
    let out = check(Path::new("tests/rulesets/every_feature.nft"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(
            "table netdev filter chain ingress: hook ingress device veth0 priority -100 policy accept"
        ),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("1 tables, 4 chains (2 base), 40 rules, 4 named sets\n"),
        "{stdout}"
    );
    assert!(out.stderr.is_empty());
}

#[test]
fn every_bad_ruleset_fails_with_its_pinned_error() {
    let dir = rulesets().join("bad");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("nft") {
            continue;
        }
        let relative = Path::new("tests/rulesets/bad").join(path.file_name().unwrap());
        let out = check(&relative);
        assert_eq!(out.status.code(), Some(1), "{}", relative.display());
        assert!(out.stdout.is_empty(), "{}", relative.display());
        let expected = std::fs::read_to_string(path.with_extension("expected")).unwrap();
        let want: String = expected
            .trim_end()
            .lines()
            .map(|l| format!("nft2bpf: {l}\n"))
            .collect();
        assert_eq!(
            String::from_utf8(out.stderr).unwrap(),
            want,
            "{}",
            relative.display()
        );
        checked += 1;
    }
    assert!(checked > 50, "only {checked} bad rulesets");
}

#[test]
fn a_missing_file_is_one_clear_line() {
    let out = check(Path::new("/nonexistent/fw.nft"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "nft2bpf: cannot read /nonexistent/fw.nft: No such file or directory (os error 2)\n"
    );
}
