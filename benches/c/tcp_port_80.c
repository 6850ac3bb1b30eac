#include "filters.h"
/* tcp port 80; loads are lazy as in libpcap: a packet cut after a
 * matching source port still matches. */
static __always_inline int ports_match(const unsigned char *t, const unsigned char *end) {
    if (t + 2 > end) return NOMATCH;
    if (be16(t) == 80) return MATCH;
    if (t + 4 > end) return NOMATCH;
    return be16(t + 2) == 80 ? MATCH : NOMATCH;
}
SEC("xdp") int filter(struct xdp_md *ctx) {
    const unsigned char *d = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    if (d + 14 > end) return NOMATCH;
    unsigned short type = be16(d + 12);
    if (type == ETH_P_IPV6) {
        if (d + 14 + 7 > end) return NOMATCH;
        if (d[14 + 6] != IPPROTO_TCP) return NOMATCH;
        return ports_match(d + 14 + 40, end);
    }
    if (type != ETH_P_IP) return NOMATCH;
    if (d + 14 + 20 > end) return NOMATCH;
    if (d[14 + 9] != IPPROTO_TCP) return NOMATCH;
    if (be16(d + 14 + 6) & 0x1fff) return NOMATCH;
    return ports_match(d + 14 + ((d[14] & 0xf) << 2), end);
}
char _license[] SEC("license") = "GPL";
