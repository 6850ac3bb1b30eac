// SPDX-License-Identifier: GPL-2.0-only
/* A component program for libxdp's multi-program dispatcher, for the
 * xdp-tools tests (testbed::xdp_tools). It counts frames of EtherType
 * 0x88b5 (IEEE local experimental) in slot 0 of the array map `counts`,
 * every other frame in slot 1, and passes everything on (XDP_PASS).
 *
 * Self-contained (no libbpf headers): built with
 *   clang -O2 -g -target bpf -c count_88b5.c -o count_88b5.o
 * Defining NAME renames the program (and its run config) so that two
 * objects built from this file are told apart by `xdp-loader status`;
 * PRIORITY sets the run priority it asks for (libxdp's default is 50).
 */
/* The few uapi definitions used, spelt out so that no kernel or libc
 * headers are needed (linux/bpf.h wants the host's asm/types.h). */
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;

/* linux/bpf.h. The freplace attach matches this struct by name against
 * the dispatcher's stub `int prog0(struct xdp_md *ctx)`. */
struct xdp_md {
	__u32 data;
	__u32 data_end;
	__u32 data_meta;
	__u32 ingress_ifindex;
	__u32 rx_queue_index;
	__u32 egress_ifindex;
};
enum { XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT };
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_FUNC_map_lookup_elem 1

/* linux/if_ether.h */
struct ethhdr {
	unsigned char h_dest[6];
	unsigned char h_source[6];
	__u16 h_proto;
};

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

#ifndef NAME
#define NAME xdp_count
#endif
#ifndef PRIORITY
#define PRIORITY 50
#endif

#define _CONCAT(x, y) x##y
#define CONCAT(x, y) _CONCAT(x, y)

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)BPF_FUNC_map_lookup_elem;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

/* The run configuration libxdp reads from BTF (xdp/xdp_helpers.h's
 * XDP_RUN_CONFIG): priority, and XDP_PASS as the only chain call action. */
struct {
	__uint(priority, PRIORITY);
	__uint(XDP_PASS, 1);
} CONCAT(_, NAME) SEC(".xdp_run_config");

SEC("xdp")
int NAME(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 key = 1;
	__u64 *count;

	if ((void *)(eth + 1) <= data_end && eth->h_proto == __builtin_bswap16(0x88b5))
		key = 0;
	count = bpf_map_lookup_elem(&counts, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
