//! Scale of the hosting case that motivated devmap programs: N veth pairs,
//! each with its own generated egress program in one devmap. Measures the
//! time to build the object (code generation), to load it (split between
//! the kernel's verifier and our own work) and to insert the N entries,
//! and prints a table.
//!
//! A plain `harness = false` main rather than divan: the point is to show
//! our time apart from the verifier's inside one operation, which a single
//! per-iteration figure would hide.
//!
//! Needs root (namespaces, veths, BPF). `cargo bench -p benches --bench
//! devmap_scale [-- N...]` (default sizes 50 and 500).

use std::time::{Duration, Instant};

use bpf_builder::asm::{Asm, Code};
use bpf_builder::attach;
use bpf_builder::ctx::{XdpAction, xdp_md};
use bpf_builder::insn::{JmpOp, Reg::*, Size};
use bpf_builder::map::{InitValue, MapSpec};
use bpf_builder::object::{Object, ProgramType};

const RUNS: usize = 5;

/// Egress program `n`: source MAC := 02:00:00:00:nn:nn; passes.
fn egress(n: u16) -> Code {
    let mut a = Asm::new();
    let out = a.new_label();
    a.ldx(Size::W, R2, R1, xdp_md::DATA);
    a.ldx(Size::W, R3, R1, xdp_md::DATA_END);
    a.mov64(R4, R2);
    a.add64(R4, 14);
    a.jmp(JmpOp::Gt, R4, R3, out);
    a.st(Size::W, R2, 6, 2);
    a.st(Size::H, R2, 10, i32::from(n.swap_bytes()));
    a.bind(out);
    a.mov64(R0, XdpAction::Pass);
    a.exit();
    a.finish().expect("labels are bound")
}

/// One measurement.
#[derive(Default, Clone, Copy)]
struct Sample {
    build: Duration,
    load_total: Duration,
    verifier: Duration,
    maps: Duration,
    insert_after: Duration,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn run(
    ns: &testbed::Netns,
    ifindexes: &[u32],
) -> Result<Sample, Box<dyn std::error::Error + Send + Sync>> {
    let n = ifindexes.len();
    // Build: N programs and a devmap whose initial contents hold them.
    let t = Instant::now();
    let mut obj = Object::new();
    let mut spec = MapSpec::devmap("ports", n as u32);
    for (i, &ifindex) in ifindexes.iter().enumerate() {
        let prog = obj.add_program(
            &format!("dm_e{i}"),
            ProgramType::XdpDevmap,
            egress(i as u16),
        )?;
        spec = spec.with_entry(
            (i as u32).to_ne_bytes(),
            InitValue::DevWithProg { ifindex, prog },
        );
    }
    obj.add_map(spec)?;
    let build = t.elapsed();
    // Load (maps created, programs verified, entries inserted) in the
    // namespace whose ifindexes the entries name.
    let loaded = ns.run(|| obj.load())??;
    let stats = loaded.stats();
    // Inserting again through the attach API, one entry at a time.
    let (_, ports) = loaded.maps().next().ok_or("no map")?;
    let programs: Vec<_> = loaded.programs().map(|(_, p)| p).collect();
    let t = Instant::now();
    ns.run(|| -> Result<(), attach::AttachError> {
        for (i, (&ifindex, p)) in ifindexes.iter().zip(&programs).enumerate() {
            attach::set_devmap_entry(ports, i as u32, ifindex, Some(p))?;
        }
        Ok(())
    })??;
    let insert_after = t.elapsed();
    Ok(Sample {
        build,
        load_total: stats.total,
        verifier: stats.verifier,
        maps: stats.maps,
        insert_after,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![50, 500]
    } else {
        sizes
    };
    if !testbed::privileged("devmap_scale benchmark") {
        return Ok(());
    }
    println!(
        "devmap scale: median of {RUNS} runs, milliseconds\n\
         {:>5} {:>8} {:>8} {:>9} {:>8} {:>10} {:>9} {:>12}",
        "N", "build", "load", "verifier", "ours", "verif. %", "inserts", "re-insert N"
    );
    for n in sizes {
        let ns = testbed::Netns::new()?;
        let pairs = ns.veth_pairs(n, "s")?;
        let ifindexes: Vec<u32> = pairs.iter().map(|p| p.a.ifindex).collect();
        let samples: Vec<Sample> = (0..RUNS)
            .map(|_| run(&ns, &ifindexes))
            .collect::<Result<_, _>>()?;
        let pick = |f: fn(&Sample) -> Duration| median(samples.iter().map(f).collect());
        let build = pick(|s| s.build);
        let load = pick(|s| s.load_total);
        let verifier = pick(|s| s.verifier);
        let ours = pick(|s| s.load_total.saturating_sub(s.verifier));
        let share = 100.0 * verifier.as_secs_f64() / (build + load).as_secs_f64();
        println!(
            "{n:>5} {:>8} {:>8} {:>9} {:>8} {:>9.1}% {:>9} {:>12}",
            ms(build),
            ms(load),
            ms(verifier),
            ms(build + ours),
            share,
            ms(pick(|s| s.maps)),
            ms(pick(|s| s.insert_after)),
        );
    }
    println!(
        "build: code generation and object; load: Object::load; verifier: inside \
         BPF_PROG_LOAD/BTF_LOAD;\nours: build + load - verifier; verif. %: verifier share of \
         build + load; inserts: map creation and the N devmap inserts during load;\n\
         re-insert N: N set_devmap_entry calls afterwards."
    );
    Ok(())
}
