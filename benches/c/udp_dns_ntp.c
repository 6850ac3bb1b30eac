#include "filters.h"
/* udp and (port 53 or port 123) */
static __always_inline int port_match(const unsigned char *t, const unsigned char *end) {
    if (t + 2 > end) return NOMATCH;
    unsigned short s = be16(t);
    if (s == 53 || s == 123) return MATCH;
    if (t + 4 > end) return NOMATCH;
    unsigned short d = be16(t + 2);
    return (d == 53 || d == 123) ? MATCH : NOMATCH;
}
SEC("xdp") int filter(struct xdp_md *ctx) {
    const unsigned char *d = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    if (d + 14 > end) return NOMATCH;
    unsigned short type = be16(d + 12);
    if (type == ETH_P_IPV6) {
        if (d + 14 + 7 > end) return NOMATCH;
        if (d[14 + 6] != IPPROTO_UDP) return NOMATCH;
        return port_match(d + 14 + 40, end);
    }
    if (type != ETH_P_IP) return NOMATCH;
    if (d + 14 + 10 > end) return NOMATCH;
    if (d[14 + 9] != IPPROTO_UDP) return NOMATCH;
    if (be16(d + 14 + 6) & 0x1fff) return NOMATCH;
    return port_match(d + 14 + ((d[14] & 0xf) << 2), end);
}
char _license[] SEC("license") = "GPL";
