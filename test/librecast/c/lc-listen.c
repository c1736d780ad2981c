/* lc-listen: Librecast 0.5.1's own listener thread (lc_socket_listen) on a channel.
 *   lc-listen IFNAME CHANNEL COUNT TIMEOUT_MS
 * Librecast's opcode handlers run for every message: a PING is answered with a PONG on the same
 * channel by the library itself (lc_op_ping_handler). Prints {"event":"ready"}, one line per
 * message the callback sees (after the library updated the channel's Lamport clock), "done". */
#include <librecast/net.h> /* not <librecast.h>: its crypto.h needs libsodium-dev */
#include <arpa/inet.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int seen;
static lc_channel_t *chan;

static void on_msg(lc_message_t *msg)
{
	pthread_mutex_lock(&lock);
	printf("{\"event\":\"msg\",\"op\":%d,\"seq\":\"%llu\",\"len\":\"%llu\",\"src\":\"%s\",\"dst\":\"%s\"}\n",
		(int)msg->op, (unsigned long long)msg->seq, (unsigned long long)msg->len, msg->srcaddr, msg->dstaddr);
	fflush(stdout);
	seen++;
	pthread_mutex_unlock(&lock);
}

int main(int argc, char *argv[])
{
	if (argc < 5) { fprintf(stderr, "usage: %s IFNAME CHANNEL COUNT TIMEOUT_MS\n", argv[0]); return 2; }
	unsigned int ifx = if_nametoindex(argv[1]);
	if (!ifx) { perror("if_nametoindex"); return 2; }
	int count = atoi(argv[3]);
	long timeout = atol(argv[4]);
	lc_ctx_t *ctx = lc_ctx_new();
	lc_socket_t *sock = lc_socket_new(ctx);
	if (!ctx || !sock) { perror("lc_socket_new"); return 1; }
	if (lc_socket_bind(sock, ifx)) { perror("lc_socket_bind"); return 1; }
	chan = lc_channel_new(ctx, argv[2]);
	if (!chan || lc_channel_bind(sock, chan) || lc_channel_join(chan)) { perror("join"); return 1; }
	if (lc_socket_listen(sock, on_msg, NULL)) { fprintf(stderr, "lc_socket_listen failed\n"); return 1; }
	printf("{\"event\":\"ready\"}\n");
	fflush(stdout);
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	for (long waited = 0; waited < timeout; waited += 10) {
		pthread_mutex_lock(&lock);
		int n = seen;
		pthread_mutex_unlock(&lock);
		if (n >= count) break;
		nanosleep(&tick, NULL);
	}
	nanosleep(&tick, NULL); /* let a PONG reply leave */
	lc_socket_listen_cancel(sock);
	printf("{\"event\":\"done\",\"received\":%d}\n", seen);
	lc_ctx_free(ctx);
	return 0;
}
