/* channel-probe: print the groups Librecast 0.5.1 derives for channel names.
 * Reads commands from stdin, one per line, writes one address per line:
 *   new HEX          lc_channel_nnew(bytes)                  (HEX may be "-" for empty)
 *   str HEX          lc_channel_new(NUL-terminated string)
 *   side HEX BAND    lc_channel_sideband(lc_channel_nnew(bytes), BAND)   BAND decimal u64
 *   hash HEX KEYHEX  lc_channel_sidehash(lc_channel_nnew(bytes), key, keylen)
 * Used by test/channel/librecast-names.test.ts; no network traffic. */
#include <librecast/net.h> /* not <librecast.h>: its crypto.h needs libsodium-dev */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t unhex(const char *s, unsigned char *out, size_t cap)
{
	size_t n = 0;
	if (strcmp(s, "-") == 0) return 0;
	while (s[0] && s[1] && n < cap) {
		unsigned int b;
		if (sscanf(s, "%2x", &b) != 1) break;
		out[n++] = (unsigned char)b;
		s += 2;
	}
	return n;
}

int main(void)
{
	static char line[1 << 16];
	static unsigned char name[1 << 15];
	unsigned char key[256];
	char op[8], hex[1 << 16], arg[1024], out[INET6_ADDRSTRLEN];
	lc_ctx_t *ctx = lc_ctx_new();
	if (!ctx) return 1;
	while (fgets(line, sizeof line, stdin)) {
		lc_channel_t *chan = NULL, *base = NULL;
		arg[0] = 0;
		if (sscanf(line, "%7s %65535s %1023s", op, hex, arg) < 2) continue;
		size_t len = unhex(hex, name, sizeof name);
		if (strcmp(op, "str") == 0) {
			name[len] = 0;
			chan = lc_channel_new(ctx, (char *)name);
		} else {
			base = lc_channel_nnew(ctx, name, len);
			if (strcmp(op, "new") == 0) chan = base;
			else if (strcmp(op, "side") == 0) chan = lc_channel_sideband(base, strtoull(arg, NULL, 10));
			else if (strcmp(op, "hash") == 0) {
				memset(key, 0, sizeof key);
				size_t klen = unhex(arg, key, sizeof key);
				chan = lc_channel_sidehash(base, key, klen);
			}
		}
		if (!chan) { puts("ERROR"); fflush(stdout); continue; }
		inet_ntop(AF_INET6, lc_channel_in6addr(chan), out, sizeof out);
		puts(out);
		fflush(stdout);
	}
	lc_ctx_free(ctx);
	return 0;
}
