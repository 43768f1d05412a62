/*
 * store_bench.c - store throughput: inserts and deletes per second, and CPU per reading.
 *
 * Usage: store_bench [DIR] [N]   (default /tmp, 20000 readings)
 *
 * Writes N ~260-byte readings into a fresh store in DIR with group sizes 1, 10, 100 and
 * 1000 readings per transaction (the ingest writer commits whatever is pending as one
 * group), then deletes them in groups of 64 (the forwarder's confirmation batches).
 * Prints wall-clock rate and CPU (user+sys) microseconds per reading. The store runs as
 * in the daemon: WAL, synchronous=FULL for inserts, NORMAL for deletes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"
#include "store.h"
#include "timeutil.h"

static double cpu_us(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	       (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp";
	long n_arg = argc > 2 ? strtol(argv[2], NULL, 10) : 20000;
	if (n_arg < 1000 || n_arg > 10000000) {
		fprintf(stderr, "store_bench: N must be 1000..10000000\n");
		return 2;
	}
	int n = (int)n_arg;
	int status = 1;
	static const int groups[] = {1, 10, 100, 1000};
	char payload[300];
	int len = snprintf(
		payload, sizeof(payload),
		"{\"IMEI\":\"357299070082380\",\"TYPE\":\"MODB\",\"TS\":\"2022-07-15T10:09:01Z\","
		"\"ID\":\"1\",\"A\":\"1\",\"ST\":\"10\",\"N\":\"47\",\"V\":[1,10,11,12,55,56,69,70,72,"
		"73,74,75,76,77,78,79,80,100,101,102,103,104,105,106,107,108,109,120,121,122,123,124,"
		"130,131,132,133,152,153,154,160,161,162,163,164,165,166,170],\"P\":\"ID-1234\"}");
	struct store_record *recs = calloc(1000, sizeof(*recs));
	int64_t *ids = calloc((size_t)n, sizeof(*ids));
	struct store_item *items = calloc(64, sizeof(*items));
	if (!recs || !ids || !items)
		goto out;
	log_set_level(LOG_LVL_WARN);
	printf("store throughput, %d readings of %d bytes, store in %s, nproc %ld\n", n, len, dir,
	       sysconf(_SC_NPROCESSORS_ONLN));
	printf("| operation | readings per transaction | readings/s | CPU us/reading |\n");
	printf("|---|---|---|---|\n");
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/store-bench-%d-%d.db", dir, (int)getpid(),
			 groups[g]);
		struct store *s = NULL;
		if (store_open(path, &s) != 0)
			goto out;
		int per = groups[g];
		int total =
			per == 1 ? n / 10 : n; /* one fsync per reading is slow: fewer of them */
		for (int i = 0; i < per; i++)
			recs[i] = (struct store_record){.ts_ms = i,
							.device = "1",
							.payload = payload,
							.len = (size_t)len};
		double c0 = cpu_us();
		int64_t t0 = time_mono_ms();
		for (int done = 0; done < total; done += per)
			if (store_put_batch(s, recs, (size_t)per, NULL) != 0) {
				store_close(s);
				goto out;
			}
		double secs = (double)(time_mono_ms() - t0) / 1000.0;
		printf("| insert | %d | %.0f | %.1f |\n", per, total / secs,
		       (cpu_us() - c0) / total);

		if (per == 1000) {
			/* Deletes, the forwarder's way: fetch 64, delete 64 in one transaction. */
			c0 = cpu_us();
			t0 = time_mono_ms();
			int deleted = 0;
			for (;;) {
				size_t got = 0;
				if (store_fetch(s, SEND_FIFO, NULL, 0, 64, items, &got) != 0) {
					store_close(s);
					goto out;
				}
				if (got == 0)
					break;
				for (size_t i = 0; i < got; i++)
					ids[i] = items[i].id;
				store_items_clear(items, got);
				if (store_delete(s, ids, got) != 0) {
					store_close(s);
					goto out;
				}
				deleted += (int)got;
			}
			secs = (double)(time_mono_ms() - t0) / 1000.0;
			printf("| fetch + delete | 64 | %.0f | %.1f |\n", deleted / secs,
			       (cpu_us() - c0) / deleted);
		}
		store_close(s);
		static const char *const suffixes[] = {"", "-wal", "-shm"};
		for (size_t k = 0; k < 3; k++) {
			char name[600];
			snprintf(name, sizeof(name), "%s%s", path, suffixes[k]);
			unlink(name);
		}
	}
	status = 0;
out:
	free(recs);
	free(ids);
	free(items);
	return status;
}
