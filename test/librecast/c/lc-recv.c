/* lc-recv: receive on a Librecast channel with Librecast 0.5.1, for the interop tests.
 *   lc-recv IFNAME CHANNEL msg|raw COUNT TIMEOUT_MS [SIDEBAND]
 * Joins CHANNEL (lc_socket_bind to IFNAME's index, lc_channel_bind, lc_channel_join), prints
 * {"event":"ready",...}, then one JSON line per datagram: msg mode uses lc_msg_recv and prints
 * the decoded header fields and payload (hex); raw mode uses lc_socket_recv and prints the bytes.
 * Stops after COUNT datagrams or when no datagram came for TIMEOUT_MS; prints "done". */
#include <librecast/net.h> /* not <librecast.h>: its crypto.h needs libsodium-dev */
#include <arpa/inet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

static void hex(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) printf("%02x", p[i]);
}

int main(int argc, char *argv[])
{
	if (argc < 6) { fprintf(stderr, "usage: %s IFNAME CHANNEL msg|raw COUNT TIMEOUT_MS [SIDEBAND]\n", argv[0]); return 2; }
	unsigned int ifx = if_nametoindex(argv[1]);
	if (!ifx) { perror("if_nametoindex"); return 2; }
	int raw = strcmp(argv[3], "raw") == 0;
	int count = atoi(argv[4]);
	long timeout = atol(argv[5]);
	lc_ctx_t *ctx = lc_ctx_new();
	lc_socket_t *sock = lc_socket_new(ctx);
	if (!ctx || !sock) { perror("lc_socket_new"); return 1; }
	if (lc_socket_bind(sock, ifx)) { perror("lc_socket_bind"); return 1; }
	lc_channel_t *chan = lc_channel_new(ctx, argv[2]);
	if (argc > 6) chan = lc_channel_sideband(chan, strtoull(argv[6], NULL, 10));
	if (!chan || lc_channel_bind(sock, chan)) { perror("lc_channel_bind"); return 1; }
	if (lc_channel_join(chan)) { perror("lc_channel_join"); return 1; }
	struct timeval tv = { timeout / 1000, (timeout % 1000) * 1000 };
	setsockopt(lc_socket_raw(sock), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	char group[INET6_ADDRSTRLEN];
	inet_ntop(AF_INET6, lc_channel_in6addr(chan), group, sizeof group);
	printf("{\"event\":\"ready\",\"group\":\"%s\"}\n", group);
	fflush(stdout);
	int got = 0;
	while (got < count) {
		if (raw) {
			unsigned char buf[65536];
			ssize_t n = lc_socket_recv(sock, buf, sizeof buf, 0);
			if (n < 0) break;
			printf("{\"event\":\"raw\",\"bytes\":%zd,\"data\":\"", n);
			hex(buf, (size_t)n);
			printf("\"}\n");
		} else {
			lc_message_t msg;
			lc_msg_init(&msg);
			ssize_t n = lc_msg_recv(sock, &msg);
			if (n < 0) break;
			size_t have = n > 33 ? (size_t)n - 33 : 0;
			printf("{\"event\":\"msg\",\"bytes\":%zd,\"timestamp\":\"%llu\",\"seq\":\"%llu\",\"rnd\":\"%llu\",\"op\":%d,\"len\":\"%llu\",\"data\":\"",
				n, (unsigned long long)msg.timestamp, (unsigned long long)msg.seq,
				(unsigned long long)msg.rnd, (int)msg.op, (unsigned long long)msg.len);
			hex(msg.data, have < msg.len ? have : msg.len);
			printf("\"}\n");
			lc_msg_free(&msg);
		}
		fflush(stdout);
		got++;
	}
	printf("{\"event\":\"done\",\"received\":%d}\n", got);
	lc_ctx_free(ctx);
	return 0;
}
