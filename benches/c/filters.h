/* Shared bits of the hand-written C equivalents of pcap filters, compiled
 * with clang -O2 -target bpf by the pcap2bpf benchmark. Each program has
 * libpcap's meaning for the filter in its name (IPv4 and IPv6 where
 * libpcap checks both; IPv4 ports only in unfragmented or first fragments,
 * as libpcap does) and returns XDP_PASS (2) on match, XDP_DROP (1) else. */
/* Self-contained: no kernel headers needed. */
struct xdp_md {
    unsigned int data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex;
};
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ETH_P_RARP 0x8035
#define ETH_P_IPV6 0x86dd
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define __always_inline inline __attribute__((always_inline))

#define SEC(name) __attribute__((section(name), used))
#define MATCH 2
#define NOMATCH 1

static __always_inline unsigned short be16(const unsigned char *p) { return (p[0] << 8) | p[1]; }
static __always_inline unsigned int be32(const unsigned char *p) {
    return ((unsigned int)p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
}
