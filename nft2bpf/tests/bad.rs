//! Bad rulesets: every file of `tests/rulesets/bad/` is refused, with the
//! errors (message, place, caret) of its `.expected` file. The first line
//! of each says what nft 1.0.6 does with it (`tests/nft_oracle.rs`
//! checks that against nft).

mod common;

use common::{check_file, compare_expected, nft_files, nft_verdict, rulesets};

#[test]
fn bad_rulesets_give_their_expected_errors() {
    let mut failures = Vec::new();
    let files = nft_files(&rulesets("bad"));
    assert!(files.len() > 50, "the bad rulesets are there");
    for path in files {
        nft_verdict(&path);
        let (map, result) = check_file(&path);
        let rendered = match result {
            Ok(_) => {
                failures.push(format!("{}: accepted", path.display()));
                continue;
            }
            Err(e) => e.render(&map),
        };
        failures.extend(compare_expected(&path, &rendered));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
