//! The parser and checker must answer every ruleset with a checked tree
//! or errors whose carets render, never a panic. An `include` may name
//! one other file: the input after its first NUL byte.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use nft2bpf::SourceMap;
use nft2bpf::syntax::MemLoader;

fuzz_target!(|data: &[u8]| {
    let (main, included) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, &[][..]),
    };
    let (Ok(main), Ok(included)) = (std::str::from_utf8(main), std::str::from_utf8(included)) else {
        return;
    };
    let mut loader = MemLoader::new().with("/fuzz/inc.nft", included);
    let mut map = SourceMap::new();
    let file = map.add("fuzz.nft", Some(Path::new("/fuzz/fuzz.nft")), main, None);
    if let Err(errors) = nft2bpf::check_ruleset(&mut map, file, &mut loader) {
        let _ = errors.render(&map);
    }
});
