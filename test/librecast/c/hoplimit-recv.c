/* hoplimit-recv: join a group with plain sockets and print each datagram's IPv6 hop limit.
 *   hoplimit-recv IFNAME GROUP PORT COUNT TIMEOUT_MS
 * Prints {"event":"ready"}, then {"event":"dgram","hoplimit":N,"bytes":B} per datagram, then
 * "done". Used to check the hop limit that Librecast and our sockets put on the wire. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int main(int argc, char *argv[])
{
	if (argc < 6) { fprintf(stderr, "usage: %s IFNAME GROUP PORT COUNT TIMEOUT_MS\n", argv[0]); return 2; }
	unsigned int ifx = if_nametoindex(argv[1]);
	if (!ifx) { perror("if_nametoindex"); return 2; }
	int s = socket(AF_INET6, SOCK_DGRAM, 0);
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	setsockopt(s, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof one);
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons((unsigned short)atoi(argv[3])) };
	if (inet_pton(AF_INET6, argv[2], &sa.sin6_addr) != 1) { fprintf(stderr, "bad group\n"); return 2; }
	struct ipv6_mreq req = { .ipv6mr_interface = ifx };
	req.ipv6mr_multiaddr = sa.sin6_addr;
	if (bind(s, (struct sockaddr *)&sa, sizeof sa)) { perror("bind"); return 1; }
	if (setsockopt(s, IPPROTO_IPV6, IPV6_JOIN_GROUP, &req, sizeof req)) { perror("join"); return 1; }
	long timeout = atol(argv[5]);
	struct timeval tv = { timeout / 1000, (timeout % 1000) * 1000 };
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	printf("{\"event\":\"ready\"}\n");
	fflush(stdout);
	int count = atoi(argv[4]), got = 0;
	while (got < count) {
		unsigned char buf[65536];
		char cbuf[256];
		struct iovec iov = { buf, sizeof buf };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
		ssize_t n = recvmsg(s, &mh, 0);
		if (n < 0) break;
		int hops = -1;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT) memcpy(&hops, CMSG_DATA(c), sizeof hops);
		}
		printf("{\"event\":\"dgram\",\"hoplimit\":%d,\"bytes\":%zd}\n", hops, n);
		fflush(stdout);
		got++;
	}
	printf("{\"event\":\"done\",\"received\":%d}\n", got);
	close(s);
	return 0;
}
