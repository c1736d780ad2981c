/* iotupd-csend: a sender of the original iotupd frame built with C and Librecast 0.5.1 alone,
 * for the byte-compatibility test (test/carousel/interop.test.ts).
 *   iotupd-csend IFNAME CHANNEL FILE PASSES [FIRST]
 * The frame is the packed struct of the original (iot.h, iot_frame_t), integers converted with
 * htons/htobe64, the hash computed by Librecast's own BLAKE3, sent raw with lc_channel_send on
 * lc_channel_new(CHANNEL). The walk over the file is the original's:
 *   for (i = 0; i <= size; i += 1194)  (so a size that is a multiple of 1194 ends with an empty frame)
 * except that the first pass starts at frame FIRST (default 0): what a receiver sees that joins
 * the original's endless loop in the middle of a pass.
 * Prints {"event":"done","frames":N,"hash":"<hex>"} at the end. */
#include <librecast/net.h>
#include <librecast/blake3.h>
#include <arpa/inet.h>
#include <endian.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MTU_FIXED 1194

struct iot_frame_t {
	uint16_t seq;
	uint64_t size;
	uint64_t off;
	uint16_t len;
	unsigned char hash[BLAKE3_OUT_LEN];
	char data[MTU_FIXED];
} __attribute__((__packed__));

_Static_assert(sizeof(struct iot_frame_t) == 1246, "the original frame is 1246 bytes");

int main(int argc, char *argv[])
{
	if (argc != 5 && argc != 6) { fprintf(stderr, "usage: %s IFNAME CHANNEL FILE PASSES [FIRST]\n", argv[0]); return 2; }
	long first = argc == 6 ? atol(argv[5]) : 0;
	unsigned int ifx = if_nametoindex(argv[1]);
	if (!ifx) { perror("if_nametoindex"); return 2; }
	int passes = atoi(argv[4]);
	FILE *fp = fopen(argv[3], "rb");
	if (!fp) { perror("fopen"); return 1; }
	fseek(fp, 0, SEEK_END);
	long size = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	unsigned char *map = malloc(size > 0 ? (size_t)size : 1);
	if (!map || (size > 0 && fread(map, 1, (size_t)size, fp) != (size_t)size)) { perror("read"); return 1; }
	fclose(fp);

	unsigned char hash[BLAKE3_OUT_LEN];
	blake3_hasher h;
	blake3_hasher_init(&h);
	blake3_hasher_update(&h, map, (size_t)size);
	blake3_hasher_finalize(&h, hash, BLAKE3_OUT_LEN);

	lc_ctx_t *ctx = lc_ctx_new();
	lc_socket_t *sock = lc_socket_new(ctx);
	if (!ctx || !sock) { perror("lc_socket_new"); return 1; }
	if (lc_socket_bind(sock, ifx)) { perror("lc_socket_bind"); return 1; }
	lc_channel_t *chan = lc_channel_new(ctx, argv[2]);
	if (!chan || lc_channel_bind(sock, chan)) { perror("lc_channel_bind"); return 1; }

	struct iot_frame_t f;
	memset(&f, 0, sizeof f);
	uint16_t seq = 0;
	long frames = 0;
	struct timespec gap = { 0, 2 * 1000 * 1000 };
	for (int p = 0; p < passes; p++) {
		for (long i = p == 0 ? first * MTU_FIXED : 0; i <= size; i += MTU_FIXED) {
			uint16_t len = (i + MTU_FIXED > size) ? (uint16_t)(size - i) : MTU_FIXED;
			f.seq = htons(seq++);
			f.size = htobe64((uint64_t)size);
			f.off = htobe64((uint64_t)i);
			f.len = htons(len);
			memcpy(f.hash, hash, sizeof hash);
			memcpy(f.data, map + i, len); /* like the original: the padding keeps older bytes */
			if (lc_channel_send(chan, &f, sizeof f, 0) != (ssize_t)sizeof f) { perror("lc_channel_send"); return 1; }
			frames++;
			if (frames % 4 == 0) nanosleep(&gap, NULL); /* under 2k frames/s: no receiver overrun */
		}
	}
	printf("{\"event\":\"done\",\"frames\":%ld,\"hash\":\"", frames);
	for (int i = 0; i < BLAKE3_OUT_LEN; i++) printf("%02x", hash[i]);
	printf("\"}\n");
	lc_ctx_free(ctx);
	free(map);
	return 0;
}
