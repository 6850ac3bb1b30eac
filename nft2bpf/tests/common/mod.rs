//! Helpers of the ruleset tests: read a ruleset file, check it, compare
//! what comes out with the `.expected` file beside it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use nft2bpf::syntax::FsLoader;
use nft2bpf::{Errors, SourceMap, check};

/// `tests/rulesets/DIR`.
pub fn rulesets(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/rulesets")
        .join(dir)
}

/// The `.nft` files of a directory, sorted.
pub fn nft_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "nft"))
        .collect();
    files.sort();
    files
}

/// A ruleset file parsed and checked, with the map of its files. Files
/// are named relative to the package (`tests/rulesets/...`), the working
/// directory of tests, so that errors in `.expected` files do not depend
/// on where the repository is.
pub fn check_file(path: &Path) -> (SourceMap, Result<check::Ruleset, Errors>) {
    let name = path
        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path);
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut map = SourceMap::new();
    let file = map.add(name.display().to_string(), Some(name), text, None);
    let result = nft2bpf::check_ruleset(&mut map, file, &mut FsLoader);
    (map, result)
}

/// Compares `actual` with `path`'s `.expected` file; with
/// `UPDATE_EXPECTED=1` in the environment, writes it instead (review the
/// diff before committing). Returns a description of a difference.
pub fn compare_expected(path: &Path, actual: &str) -> Option<String> {
    let expected_path = path.with_extension("expected");
    if std::env::var_os("UPDATE_EXPECTED").is_some() {
        std::fs::write(&expected_path, actual).unwrap();
        return None;
    }
    match std::fs::read_to_string(&expected_path) {
        Ok(expected) if expected == actual => None,
        Ok(expected) => Some(format!(
            "{}: output differs\n--- expected\n{expected}--- actual\n{actual}",
            path.display()
        )),
        Err(_) => Some(format!(
            "{}: no .expected file; the output is\n{actual}",
            path.display()
        )),
    }
}

/// The first line of a ruleset: `# nft: rejects` or `# nft: accepts...`,
/// what nft 1.0.6 does with it.
pub fn nft_verdict(path: &Path) -> NftVerdict {
    let text = std::fs::read_to_string(path).unwrap();
    let first = text.lines().next().unwrap_or("");
    match first.strip_prefix("# nft: ") {
        Some(rest) if rest.starts_with("rejects") => NftVerdict::Rejects,
        Some(rest) if rest.starts_with("accepts") => NftVerdict::Accepts,
        _ => panic!(
            "{}: the first line must be `# nft: rejects` or `# nft: accepts...`",
            path.display()
        ),
    }
}

/// What nft does with a ruleset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NftVerdict {
    /// `nft -f` loads it.
    Accepts,
    /// `nft -f` refuses it.
    Rejects,
}

/// The match list of the differential tests (`tests/rulesets/diff/
/// matches.txt`), without comments and blank lines.
pub fn diff_matches() -> Vec<String> {
    let text =
        std::fs::read_to_string(rulesets("diff").join("matches.txt")).expect("the match list");
    text.lines()
        .map(str::trim)
        .filter(|m| !m.is_empty() && !m.starts_with('#'))
        .map(String::from)
        .collect()
}
