/* Drives Debian's liblcrq (RFC 6330, C) for the interop tests and benchmarks of src/fec.
 *   lcrq-tool enc F T datafile esi...   writes the symbols (T bytes each) to stdout
 *   lcrq-tool dec F T symfile esi...    decodes the object from the symbols, writes F bytes
 *   lcrq-tool bench F T reps            prints "encode_ns decode_ns" (decode from repair only)
 * Always a single source block: exits 3 if liblcrq chose Z != 1 or N != 1. */
#include <lcrq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *p = malloc(n ? (size_t)n : 1);
	if (fread(p, 1, (size_t)n, f) != (size_t)n) { fclose(f); free(p); return NULL; }
	fclose(f);
	*len = (size_t)n;
	return p;
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char *argv[])
{
	if (argc < 5) return 2;
	uint64_t F = strtoull(argv[2], NULL, 10);
	uint16_t T = (uint16_t)strtoul(argv[3], NULL, 10);
	rq_t *rq = rq_init(F, T);
	if (!rq) return 4;
	if (rq_Z(rq) != 1 || rq_N(rq) != 1) { fprintf(stderr, "Z=%u N=%u\n", rq_Z(rq), rq_N(rq)); return 3; }
	const uint32_t K = rq_K(rq);
	fprintf(stderr, "K=%u KP=%u Al=%u\n", K, rq_KP(rq), rq_Al(rq));
	if (!strcmp(argv[1], "enc")) {
		size_t len;
		unsigned char *data = slurp(argv[4], &len);
		if (!data || len != F) return 5;
		unsigned char *pad = calloc((size_t)K * T, 1);
		memcpy(pad, data, len);
		if (rq_encode(rq, pad, (size_t)K * T)) return 6;
		unsigned char *sym = malloc(T);
		for (int i = 5; i < argc; i++) {
			uint32_t esi = (uint32_t)strtoul(argv[i], NULL, 10);
			rq_pid_t pid = 0;
			pid = rq_pidsetesi(pid, esi);
			if (rq_pid2esi(pid) != esi) return 7;
			rq_symbol(rq, &pid, sym, 0);
			fwrite(sym, 1, T, stdout);
		}
	}
	else if (!strcmp(argv[1], "dec")) {
		size_t len;
		unsigned char *enc = slurp(argv[4], &len);
		uint32_t n = (uint32_t)(argc - 5);
		if (!enc || len != (size_t)n * T) return 5;
		uint32_t *esi = malloc(sizeof(uint32_t) * (n ? n : 1));
		for (uint32_t i = 0; i < n; i++) esi[i] = (uint32_t)strtoul(argv[5 + i], NULL, 10);
		unsigned char *dec = calloc((size_t)K * T, 1);
		if (rq_decode(rq, dec, enc, esi, n)) return 1;
		fwrite(dec, 1, F, stdout);
	}
	else if (!strcmp(argv[1], "bench")) {
		int reps = atoi(argv[4]);
		unsigned char *pad = malloc((size_t)K * T);
		for (size_t i = 0; i < (size_t)K * T; i++) pad[i] = (unsigned char)(i * 2654435761u >> 24);
		double enc_ns = 0, dec_ns = 0;
		unsigned char *rep = malloc((size_t)K * T);
		uint32_t *esi = malloc(sizeof(uint32_t) * K);
		for (int r = 0; r < reps; r++) {
			double t0 = now_ns();
			rq_t *e = rq_init(F, T);
			rq_encode(e, pad, (size_t)K * T);
			for (uint32_t i = 0; i < K; i++) {
				rq_pid_t pid = 0;
				pid = rq_pidsetesi(pid, K + i + (uint32_t)r * K);
				rq_symbol(e, &pid, rep + (size_t)i * T, 0);
				esi[i] = K + i + (uint32_t)r * K;
			}
			double t1 = now_ns();
			rq_free(e);
			rq_t *d = rq_init(F, T);
			unsigned char *dec = malloc((size_t)K * T);
			double t2 = now_ns();
			int rc = rq_decode(d, dec, rep, esi, K);
			double t3 = now_ns();
			if (rc == 0 && memcmp(dec, pad, F)) rc = -9;
			free(dec);
			rq_free(d);
			enc_ns += t1 - t0;
			dec_ns += t3 - t2;
			if (rc) { printf("fail %d\n", rc); return 1; }
		}
		printf("%.0f %.0f\n", enc_ns / reps, dec_ns / reps);
	}
	rq_free(rq);
	return 0;
}
