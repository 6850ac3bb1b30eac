//! A subprogram, `bpf_loop` with a callback, and global data.
//! Run as root: `cargo run --example loop_globals`.

use bpf_builder::run::TestRun;
use examples::loop_globals::{self, data};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (iterations, step) = (10, 7);
    let built = loop_globals::build(iterations, step)?;
    let loaded = built.object.load()?;
    let out = loaded
        .program(built.program)
        .test_run(&TestRun::new(&[0u8; 64]))?;
    let value = loaded
        .map(built.data)
        .lookup(&0u32.to_ne_bytes())?
        .unwrap_or_default();
    let read =
        |off: u32| u64::from_ne_bytes(value[off as usize..off as usize + 8].try_into().unwrap());
    println!("XDP action {}", out.retval);
    println!(
        "total = {} (expected {}), runs = {}",
        read(data::TOTAL),
        loop_globals::expected_total(iterations, step),
        read(data::RUNS)
    );
    Ok(())
}
