#include <pcap/pcap.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <arpa/inet.h>
/* Test helper: libpcap's verdict on every packet of a capture file.
 * argv[1]: the capture; argv[2]: netmask (dotted) or "-".
 * stdin: one filter expression per line.
 * stdout, one line per expression: "V" and a 0/1 per packet, or "ERR msg".
 * Filters are compiled like tcpdump -r does (against the file, optimised);
 * one that libpcap's optimiser finds "rejects all packets" rejects all. */
struct pkt { struct pcap_pkthdr h; u_char *d; };
int main(int argc, char **argv) {
  char err[PCAP_ERRBUF_SIZE];
  if (argc < 3) { fprintf(stderr, "usage: verdicts FILE NETMASK\n"); return 2; }
  pcap_t *p = pcap_open_offline(argv[1], err);
  if (!p) { fprintf(stderr, "%s\n", err); return 2; }
  bpf_u_int32 mask = PCAP_NETMASK_UNKNOWN;
  if (strcmp(argv[2], "-") != 0) { struct in_addr a; inet_pton(AF_INET, argv[2], &a); mask = ntohl(a.s_addr); }
  size_t n = 0, cap = 64;
  struct pkt *pk = malloc(cap * sizeof *pk);
  struct pcap_pkthdr *h; const u_char *d;
  while (pcap_next_ex(p, &h, &d) == 1) {
    if (n == cap) { cap *= 2; pk = realloc(pk, cap * sizeof *pk); }
    pk[n].h = *h; pk[n].d = malloc(h->caplen ? h->caplen : 1); memcpy(pk[n].d, d, h->caplen); n++;
  }
  /* Long generated filters take tens of kilobytes. */
  static char line[1 << 20];
  while (fgets(line, sizeof line, stdin)) {
    size_t l = strlen(line);
    if (l && line[l-1] == '\n') line[--l] = 0;
    struct bpf_program prog;
    int all_reject = 0;
    if (pcap_compile(p, &prog, line, 1, mask) != 0) {
      if (strstr(pcap_geterr(p), "rejects all packets")) all_reject = 1;
      else {
        char *m = pcap_geterr(p);
        for (char *c = m; *c; c++) if (*c == '\n' || *c == '\r') *c = ' ';
        printf("ERR %s\n", m); fflush(stdout); continue;
      }
    }
    putchar('V');
    for (size_t i = 0; i < n; i++)
      putchar(!all_reject && pcap_offline_filter(&prog, &pk[i].h, pk[i].d) ? '1' : '0');
    putchar('\n');
    if (!all_reject) pcap_freecode(&prog);
    fflush(stdout);
  }
  return 0;
}
