//! Builds the XDP counter, loads it, test-runs it on a few frames and
//! prints the counters. Run as root: `cargo run --example xdp_counter`.

use bpf_builder::run::TestRun;
use examples::xdp_counter::{self, Class};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let counter = xdp_counter::build()?;
    let loaded = counter.object.load()?;
    let prog = loaded.program(counter.program);
    let frames = [
        xdp_counter::frame(0x0800, 60),
        xdp_counter::frame(0x0800, 1500),
        xdp_counter::frame(0x86dd, 90),
        xdp_counter::frame(0x0806, 42),
        xdp_counter::frame(0x88cc, 64),
    ];
    for f in &frames {
        let out = prog.test_run(&TestRun::new(f))?;
        println!("frame of {:>4} bytes -> XDP action {}", f.len(), out.retval);
    }
    let counters = loaded.map(counter.counters);
    println!("{:<6} {:>8} {:>8}", "class", "packets", "bytes");
    for class in Class::ALL {
        let key = (class as u32).to_ne_bytes();
        let packets = counters.sum_u64(&key, 0)?;
        let bytes = counters.sum_u64(&key, 8)?;
        println!("{:<6} {packets:>8} {bytes:>8}", format!("{class:?}"));
    }
    Ok(())
}
