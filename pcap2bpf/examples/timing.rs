//! Where compile time goes, phase by phase, for one expression.
use std::time::Instant;

fn main() {
    let expr = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let tables = pcap2bpf::Tables::system();
    let link = pcap2bpf::LinkType::En10mb;
    let opts = pcap2bpf::CompileOptions::new(link, pcap2bpf::Target::Xdp, &tables).verdicts(2, 1);
    let n = 20000;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(pcap2bpf::parse(&expr, link, &tables).unwrap());
    }
    let parse = t.elapsed().as_nanos() / n;
    let f = pcap2bpf::parse(&expr, link, &tables).unwrap();
    let lo = pcap2bpf::lower_options(&opts);
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(pcap2bpf::build_ir(&f, &lo).unwrap());
    }
    let ir = t.elapsed().as_nanos() / n;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(pcap2bpf::compile(&expr, &opts).unwrap());
    }
    let all = t.elapsed().as_nanos() / n;
    println!("parse {parse} ns, lower+opt {ir} ns, total {all} ns");
}
