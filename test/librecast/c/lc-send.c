/* lc-send: send on a Librecast channel with Librecast 0.5.1, for the interop tests.
 *   lc-send IFNAME CHANNEL msg|raw COUNT [SIDEBAND]
 * msg: lc_msg_send of payload "lc-msg-<i>" with opcode i % 7 (LC_OP_DATA..LC_OP_RET) and
 *      timestamp 1000000000000000000 + i (lc_msg_send keeps a non-zero msg->timestamp);
 * raw: lc_channel_send of "lc-raw-<i>" (no header).
 * Messages i = 1..COUNT, 20 ms apart. Prints one JSON line per datagram sent, then "done". */
#include <librecast/net.h> /* not <librecast.h>: its crypto.h needs libsodium-dev */
#include <arpa/inet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char *argv[])
{
	if (argc < 5) { fprintf(stderr, "usage: %s IFNAME CHANNEL msg|raw COUNT [SIDEBAND]\n", argv[0]); return 2; }
	unsigned int ifx = if_nametoindex(argv[1]);
	if (!ifx) { perror("if_nametoindex"); return 2; }
	int raw = strcmp(argv[3], "raw") == 0;
	int count = atoi(argv[4]);
	lc_ctx_t *ctx = lc_ctx_new();
	lc_socket_t *sock = lc_socket_new(ctx);
	if (!ctx || !sock) { perror("lc_socket_new"); return 1; }
	if (lc_socket_bind(sock, ifx)) { perror("lc_socket_bind"); return 1; }
	lc_channel_t *chan = lc_channel_new(ctx, argv[2]);
	if (argc > 5) chan = lc_channel_sideband(chan, strtoull(argv[5], NULL, 10));
	if (!chan || lc_channel_bind(sock, chan)) { perror("lc_channel_bind"); return 1; }
	char group[INET6_ADDRSTRLEN];
	inet_ntop(AF_INET6, lc_channel_in6addr(chan), group, sizeof group);
	struct timespec gap = { 0, 20 * 1000 * 1000 };
	for (int i = 1; i <= count; i++) {
		char payload[64];
		ssize_t n;
		if (raw) {
			int len = snprintf(payload, sizeof payload, "lc-raw-%d", i);
			n = lc_channel_send(chan, payload, (size_t)len, 0);
		} else {
			lc_message_t msg;
			int len = snprintf(payload, sizeof payload, "lc-msg-%d", i);
			lc_msg_init_data(&msg, payload, (size_t)len, NULL, NULL);
			msg.op = (lc_opcode_t)(i % 7);
			msg.timestamp = 1000000000000000000ULL + (unsigned long long)i;
			n = lc_msg_send(chan, &msg);
		}
		if (n < 0) { perror("send"); return 1; }
		printf("{\"event\":\"sent\",\"i\":%d,\"bytes\":%zd,\"group\":\"%s\"}\n", i, n, group);
		fflush(stdout);
		nanosleep(&gap, NULL);
	}
	printf("{\"event\":\"done\"}\n");
	lc_ctx_free(ctx);
	return 0;
}
