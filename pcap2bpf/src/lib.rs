//! pcap2bpf: tcpdump filter expressions to eBPF (work in progress).
