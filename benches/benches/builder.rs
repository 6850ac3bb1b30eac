//! bpf-builder benchmarks.
//!
//! - `assemble`: instructions per second through `Asm` + `finish` for a
//!   1M-instruction program.
//! - `build_and_load`: build and load small programs; after divan's table,
//!   a split of 1,000 loads into the kernel's time (map creation and the
//!   verifier) and ours.
//!
//! Run: `cargo bench -p benches --bench builder` (as root for the load part).

use std::time::{Duration, Instant};

use benches::{emit_mix, small_object};
use divan::counter::ItemsCount;

const MILLION: usize = 1_000_000;

#[divan::bench(sample_count = 10)]
fn assemble_1m(bencher: divan::Bencher) {
    bencher
        .counter(ItemsCount::new(MILLION))
        .bench(|| emit_mix(MILLION).finish().expect("bound"));
}

#[divan::bench]
fn build_small_object(bencher: divan::Bencher) {
    bencher.bench(|| small_object(7));
}

#[divan::bench(sample_count = 20)]
fn build_and_load_small_object(bencher: divan::Bencher) {
    if !can_load() {
        return;
    }
    bencher.bench(|| small_object(7).load().expect("loads"));
}

fn can_load() -> bool {
    let ok = bpf_builder::sys::bpf::possible_cpus().is_ok()
        && std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("CapEff:"))
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            })
            .is_some_and(|c| c & (1 << 39 | 1 << 21) != 0);
    if !ok {
        eprintln!("skipping load benchmarks: needs CAP_BPF");
    }
    ok
}

/// Builds and loads `n` small programs one object at a time and splits
/// the time between the builder, map creation and the verifier.
fn load_split(n: u32) {
    let mut build = Duration::ZERO;
    let (mut verifier, mut maps, mut total) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let wall = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        let o = small_object(i);
        build += t.elapsed();
        let loaded = o.load().expect("loads");
        let s = loaded.stats();
        verifier += s.verifier;
        maps += s.maps;
        total += s.total;
    }
    let wall = wall.elapsed();
    let ours_in_load = total.saturating_sub(verifier + maps);
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    println!("\nbuild + load of {n} small XDP programs (one map each):");
    println!(
        "  wall clock          {:>10.1} ms",
        wall.as_secs_f64() * 1e3
    );
    println!("  build (ours)        {:>10.2} us/program", per(build));
    println!(
        "  load: layout, relocation, BTF, handles (ours) {:>8.2} us/program",
        per(ours_in_load)
    );
    println!(
        "  load: map syscalls (kernel)                   {:>8.2} us/program",
        per(maps)
    );
    println!(
        "  load: BPF_PROG_LOAD (verifier + JIT, kernel)  {:>8.2} us/program",
        per(verifier)
    );
    println!(
        "  our share of the total: {:.1}%",
        100.0 * (build + ours_in_load).as_secs_f64() / (build + total).as_secs_f64()
    );
}

fn main() {
    divan::main();
    if can_load() {
        load_split(1000);
    }
}
