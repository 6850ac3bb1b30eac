#include <pcap/pcap.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <arpa/inet.h>
/* Test helper: asks the system libpcap whether it compiles filters.
 * stdin lines: LINKTYPE \t NETMASK (dotted, or -) \t EXPR
 * stdout: one line each, OK or ERR message. Unoptimised, so filters that
 * match nothing still count as accepted. */
int main(void) {
  char line[8192];
  while (fgets(line, sizeof line, stdin)) {
    size_t n = strlen(line);
    if (n && line[n-1] == '\n') line[--n] = 0;
    char *t1 = strchr(line, '\t'); if (!t1) { puts("ERR bad line"); fflush(stdout); continue; }
    *t1 = 0; char *t2 = strchr(t1 + 1, '\t'); if (!t2) { puts("ERR bad line"); fflush(stdout); continue; }
    *t2 = 0;
    int dlt = pcap_datalink_name_to_val(line);
    bpf_u_int32 mask = PCAP_NETMASK_UNKNOWN;
    if (strcmp(t1 + 1, "-") != 0) { struct in_addr a; inet_pton(AF_INET, t1 + 1, &a); mask = ntohl(a.s_addr); }
    pcap_t *p = pcap_open_dead(dlt, 262144);
    struct bpf_program prog;
    if (pcap_compile(p, &prog, t2 + 1, 0, mask) == 0) { puts("OK"); pcap_freecode(&prog); }
    else {
      /* One line per answer: some messages end with a newline. */
      char *m = pcap_geterr(p);
      for (char *c = m; *c; c++) if (*c == '\n' || *c == '\r') *c = ' ';
      printf("ERR %s\n", m);
    }
    pcap_close(p);
    fflush(stdout);
  }
  return 0;
}
