#include <pcap/pcap.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
/* Measurement helper: for each expression on stdin (EN10MB), libpcap's
 * optimised instruction count and the median pcap_compile time in ns over
 * 101 runs. Output: "LEN NS" or "ERR". */
static int cmp(const void *a, const void *b) { long x = *(const long *)a, y = *(const long *)b; return (x > y) - (x < y); }
int main(void) {
  char line[8192];
  pcap_t *p = pcap_open_dead(DLT_EN10MB, 262144);
  while (fgets(line, sizeof line, stdin)) {
    size_t l = strlen(line);
    if (l && line[l-1] == '\n') line[--l] = 0;
    struct bpf_program prog;
    long t[101]; int len = -1;
    for (int i = 0; i < 101; i++) {
      struct timespec a, b;
      clock_gettime(CLOCK_MONOTONIC, &a);
      int r = pcap_compile(p, &prog, line, 1, 0xffffff00);
      clock_gettime(CLOCK_MONOTONIC, &b);
      t[i] = (b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec);
      if (r != 0) { len = -1; break; }
      len = prog.bf_len; pcap_freecode(&prog);
    }
    if (len < 0) { puts("ERR"); fflush(stdout); continue; }
    qsort(t, 101, sizeof t[0], cmp);
    printf("%d %ld\n", len, t[50]); fflush(stdout);
  }
  return 0;
}
