#include "filters.h"
/* host 10.0.0.1 (IPv4, ARP and RARP, as libpcap) */
SEC("xdp") int filter(struct xdp_md *ctx) {
    const unsigned char *d = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    if (d + 14 > end) return NOMATCH;
    unsigned short type = be16(d + 12);
    unsigned int src_off, dst_off;
    if (type == ETH_P_IP) { src_off = 26; dst_off = 30; }
    else if (type == ETH_P_ARP || type == ETH_P_RARP) { src_off = 28; dst_off = 38; }
    else return NOMATCH;
    if (d + src_off + 4 > end) return NOMATCH;
    if (be32(d + src_off) == 0x0a000001) return MATCH;
    if (d + dst_off + 4 > end) return NOMATCH;
    return be32(d + dst_off) == 0x0a000001 ? MATCH : NOMATCH;
}
char _license[] SEC("license") = "GPL";
