/* The C side of benches/ringbuf.rs: drains a ring buffer map (found by
 * its id) with libbpf's ring_buffer__poll. For each count N read from
 * stdin it polls until N records came, then prints the nanoseconds that
 * took and the sum of the records' first u64 (so the data is read). */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned long long count, sum;

static int on_record(void *ctx, void *data, size_t len)
{
	unsigned long long first;

	(void)ctx;
	if (len >= sizeof(first)) {
		memcpy(&first, data, sizeof(first));
		sum += first;
	}
	count++;
	return 0;
}

int main(int argc, char **argv)
{
	struct ring_buffer *rb;
	unsigned long long want;
	int fd;

	if (argc != 2)
		return 2;
	fd = bpf_map_get_fd_by_id(atoi(argv[1]));
	if (fd < 0) {
		perror("bpf_map_get_fd_by_id");
		return 1;
	}
	rb = ring_buffer__new(fd, on_record, NULL, NULL);
	if (!rb) {
		perror("ring_buffer__new");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (scanf("%llu", &want) == 1) {
		struct timespec a, b;

		count = 0;
		sum = 0;
		clock_gettime(CLOCK_MONOTONIC, &a);
		while (count < want) {
			if (ring_buffer__poll(rb, 1000) < 0) {
				perror("ring_buffer__poll");
				return 1;
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		printf("%llu %llu\n",
		       (unsigned long long)(b.tv_sec - a.tv_sec) * 1000000000ull +
			       (unsigned long long)b.tv_nsec - (unsigned long long)a.tv_nsec,
		       sum);
		fflush(stdout);
	}
	ring_buffer__free(rb);
	return 0;
}
