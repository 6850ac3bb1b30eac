//! Prints the XDP code of the filter given as arguments.
fn main() {
    let expr = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let tables = pcap2bpf::Tables::system();
    let opts = pcap2bpf::CompileOptions {
        link: pcap2bpf::LinkType::En10mb,
        target: pcap2bpf::Target::Xdp,
        on_match: 2,
        on_nomatch: 1,
        test_run_meta: false,
        netmask: None,
        resolver: &tables,
    };
    match pcap2bpf::compile(&expr, &opts) {
        Ok(c) => print!("{}", c.object.listing(c.program).unwrap_or_default()),
        Err(e) => eprintln!("{}", e.render(&expr)),
    }
}
