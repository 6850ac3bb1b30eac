//! Map contents at scale (issue 16, item 4), in one run:
//!
//! 1. N initial entries of a hash (u32 -> u64) added to an object with
//!    `Object::add_typed_entry` and loaded. Prints, per N, the time to add
//!    them ("build"), the load (`Loaded::stats`: total, and the map phase:
//!    creation and the batched writes), the kernel's own cost of inserting
//!    the same entries (one `BPF_MAP_UPDATE_BATCH` of prebuilt buffers into
//!    a fresh map), and ours: build + load - kernel inserts. Linear means
//!    ours per entry stays flat as N grows.
//! 2. 1,000,000 entries written to a hash through a typed batch insert
//!    (`TypedMap::insert_batch`: one `BPF_MAP_UPDATE_BATCH` per chunk)
//!    against one `BPF_MAP_UPDATE_ELEM` per entry, with the kernel's own
//!    time (one batch of prebuilt buffers) for reference.
//!
//! A plain `harness = false` main, as `devmap_scale`: the point is the
//! split inside one operation. Needs CAP_BPF.
//! `cargo bench -p benches --bench map_contents [-- N...]` (default sizes
//! 4,000, 25,000, 100,000 and 200,000).

use std::time::{Duration, Instant};

use bpf_builder::handle::{Map, UpdateFlags};
use bpf_builder::map::MapSpec;
use bpf_builder::object::Object;

const RUNS: usize = 5;
const MILLION: u32 = 1_000_000;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// One measurement of N initial entries.
#[derive(Clone, Copy)]
struct Sample {
    build: Duration,
    load: Duration,
    maps: Duration,
    kernel: Duration,
}

fn value(k: u32) -> u64 {
    u64::from(k) * 7
}

fn initial_entries(n: u32) -> Result<Sample, BoxError> {
    let t = Instant::now();
    let mut obj = Object::new();
    let h = obj.add_map(MapSpec::hash("initial", 4, 8, n))?;
    for k in 0..n {
        obj.add_typed_entry(h, k, value(k))?;
    }
    let build = t.elapsed();
    let loaded = obj.load()?;
    let stats = loaded.stats();
    let map = loaded.map(h);
    let check = map.typed::<u32, u64>()?.get(&(n - 1))?;
    assert_eq!(check, Some(value(n - 1)), "the last entry is in");
    Ok(Sample {
        build,
        load: stats.total,
        maps: stats.maps,
        kernel: kernel_inserts(n)?,
    })
}

/// The kernel's time to insert keys 0..n into a fresh hash: one batch of
/// prebuilt buffers.
fn kernel_inserts(n: u32) -> Result<Duration, BoxError> {
    let map = fresh_hash("kernel_only", n)?;
    let keys: Vec<u8> = (0..n).flat_map(u32::to_ne_bytes).collect();
    let values: Vec<u8> = (0..n).flat_map(|k| value(k).to_ne_bytes()).collect();
    let t = Instant::now();
    let written = map.update_batch(&keys, &values)?;
    let kernel = t.elapsed();
    assert_eq!(written, n);
    Ok(kernel)
}

/// An empty hash of `n` u32 -> u64 entries.
fn fresh_hash(name: &str, n: u32) -> Result<Map, BoxError> {
    let mut obj = Object::new();
    let id = obj.add_map(MapSpec::hash(name, 4, 8, n))?;
    Ok(obj.load()?.map(id).try_clone()?)
}

fn table(sizes: &[u32]) -> Result<(), BoxError> {
    println!(
        "1. initial entries of a hash (u32 -> u64), median of {RUNS} runs, milliseconds\n\
         {:>8} {:>8} {:>8} {:>8} {:>9} {:>8} {:>12}",
        "N", "build", "load", "maps", "kernel", "ours", "ours/entry"
    );
    for &n in sizes {
        let samples: Vec<Sample> = (0..RUNS)
            .map(|_| initial_entries(n))
            .collect::<Result<_, _>>()?;
        let pick = |f: fn(&Sample) -> Duration| median(samples.iter().map(f).collect());
        let ours = pick(|s| (s.build + s.load).saturating_sub(s.kernel));
        println!(
            "{n:>8} {:>8} {:>8} {:>8} {:>9} {:>8} {:>9.0} ns",
            ms(pick(|s| s.build)),
            ms(pick(|s| s.load)),
            ms(pick(|s| s.maps)),
            ms(pick(|s| s.kernel)),
            ms(ours),
            ours.as_secs_f64() * 1e9 / f64::from(n),
        );
    }
    println!(
        "build: Object::new + add_map + N add_typed_entry; load: Object::load (no program);\n\
         maps: its map phase (creation, batched writes); kernel: the same N inserts as one\n\
         BPF_MAP_UPDATE_BATCH of prebuilt buffers; ours: build + load - kernel."
    );
    Ok(())
}

fn million() -> Result<(), BoxError> {
    let keys = 0..MILLION;
    let batched = fresh_hash("batched", MILLION)?;
    let t = Instant::now();
    let written = batched
        .typed::<u32, u64>()?
        .insert_batch(keys.clone().map(|k| (k, value(k))))?;
    let batch = t.elapsed();
    assert_eq!(written, MILLION as usize);

    let single = fresh_hash("single", MILLION)?;
    let t = Instant::now();
    for k in keys {
        single.update(&k.to_ne_bytes(), &value(k).to_ne_bytes(), UpdateFlags::Any)?;
    }
    let one_by_one = t.elapsed();
    drop((batched, single));
    let kernel = kernel_inserts(MILLION)?;
    let per = |d: Duration| d.as_secs_f64() * 1e9 / f64::from(MILLION);
    println!("\n2. 1,000,000 hash entries (u32 -> u64) from user space");
    println!(
        "  typed insert_batch (BPF_MAP_UPDATE_BATCH per chunk) {:>9} ms {:>7.0} ns/entry",
        ms(batch),
        per(batch)
    );
    println!(
        "  Map::update, one BPF_MAP_UPDATE_ELEM per entry     {:>9} ms {:>7.0} ns/entry",
        ms(one_by_one),
        per(one_by_one)
    );
    println!(
        "  (kernel alone: one batch of prebuilt buffers       {:>9} ms {:>7.0} ns/entry)",
        ms(kernel),
        per(kernel)
    );
    println!(
        "  batch speed-up: {:.1}x",
        one_by_one.as_secs_f64() / batch.as_secs_f64()
    );
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let sizes: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![4_000, 25_000, 100_000, 200_000]
    } else {
        sizes
    };
    if !testbed::privileged("map_contents benchmark") {
        return Ok(());
    }
    table(&sizes)?;
    million()
}
