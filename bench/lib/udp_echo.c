/*
 * udp_echo: the floor of the benchmark. It answers every DNS query with the
 * query itself, QR set and RCODE cleared, one recvfrom and one sendto per
 * packet: the least work a UDP DNS server can do, so its CPU time per answer
 * is what the kernel and the socket calls cost before any DNS logic.
 *
 * Usage: udp_echo ADDR PORT    (foreground; stops on SIGTERM/SIGINT)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DNS_HEADER_LEN 12

int main(int argc, char **argv)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	unsigned char buf[65536];
	char *end;
	long port;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: %s ADDR PORT\n", argv[0]);
		return 2;
	}
	port = strtol(argv[2], &end, 10);
	if (*end != '\0' || port <= 0 || port > 65535 ||
	    inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
		fprintf(stderr, "udp_echo: bad address or port\n");
		return 2;
	}
	addr.sin_port = htons((unsigned short)port);

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		perror("udp_echo");
		return 1;
	}

	for (;;) {
		struct sockaddr_storage peer;
		socklen_t peer_len = sizeof(peer);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0,
				     (struct sockaddr *)&peer, &peer_len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("udp_echo: recvfrom");
			return 1;
		}
		/* Too short to be DNS: a real server would drop it too. */
		if (n < DNS_HEADER_LEN)
			continue;
		buf[2] |= 0x80;  /* QR: this is a response */
		buf[3] &= 0xf0;  /* RCODE: NOERROR */
		if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer,
			   peer_len) < 0 && errno != EAGAIN && errno != ENOBUFS)
			perror("udp_echo: sendto");
	}
}
