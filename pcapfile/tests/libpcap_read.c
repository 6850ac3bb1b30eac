/* Reads a capture file with libpcap, as tcpdump -r does, and prints what
 * libpcap made of it: "open-error\tMESSAGE", or one line per packet
 * ("packet\tCAPLEN\tLEN\tSEC\tNSEC") followed by "end" or
 * "error\tMESSAGE". The oracle of pcapfile's tests/libpcap_faults.rs. */
#include <pcap/pcap.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *hdr;
	const u_char *data;
	pcap_t *p;
	int r;

	if (argc != 2) {
		fprintf(stderr, "usage: %s FILE\n", argv[0]);
		return 2;
	}
	p = pcap_open_offline_with_tstamp_precision(argv[1],
	    PCAP_TSTAMP_PRECISION_NANO, errbuf);
	if (p == NULL) {
		printf("open-error\t%s\n", errbuf);
		return 0;
	}
	while ((r = pcap_next_ex(p, &hdr, &data)) == 1)
		printf("packet\t%u\t%u\t%lld\t%ld\n", hdr->caplen, hdr->len,
		    (long long)hdr->ts.tv_sec, (long)hdr->ts.tv_usec);
	if (r == PCAP_ERROR)
		printf("error\t%s\n", pcap_geterr(p));
	else
		printf("end\n");
	pcap_close(p);
	return 0;
}
