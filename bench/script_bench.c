/*
 * script_bench.c - what a transformer script costs per reading, and per loaded script.
 *
 * Usage: script_bench [N [ONLY]]   (default 200000 readings; ONLY: none, identity or
 *        scale, to run one case, e.g. under `perf stat`)
 *
 * For a device of 30 holding registers (Neuron's workload), times N readings through
 *   - message_encode (the default message, no script),
 *   - the transformer with `return msg` (the script path's fixed cost),
 *   - the transformer with bench/scale30.lua (examples/scripts/scale.lua's transform with
 *     a name for each of the 30 registers),
 *   - the same with 4 threads on 4 states and on 1 state (contention),
 * and prints CPU microseconds per reading, and the memory of one state after loading each
 * script (the Lua allocator's bytes) and after the calls.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "log.h"
#include "message.h"
#include "script.h"

static double cpu_us(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	       (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec;
}

static double wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static struct block blocks[] = {{0, 30}};
static struct device_config devices[8];
static uint16_t values[30];
static const struct message_context mctx = {"357299070082380", "ID-1", TIME_ISO8601};

static char *read_text(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *text = malloc(1 << 20);
	if (text) {
		*len = fread(text, 1, (1 << 20) - 1, f);
		text[*len] = '\0';
	}
	fclose(f);
	return text;
}

static struct config make_config(const char *name, char *source, size_t len)
{
	struct config cfg = {0};
	cfg.imei = "357299070082380";
	cfg.devices = devices;
	cfg.device_count = 8;
	cfg.logger.id = "ID-1";
	cfg.logger.topic = "[IMEI]/logger";
	cfg.logger.script = (char *)name;
	cfg.logger.script_source = source;
	cfg.logger.script_len = len;
	return cfg;
}

struct worker {
	struct script_transformer *t;
	int device;
	long n;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct reading r = {.device = &devices[w->device],
			    .ts_ms = 1657879741000LL,
			    .values = values,
			    .value_count = 30};
	char why[SCRIPT_ERROR_MAX];
	for (long i = 0; i < w->n; i++) {
		struct script_output out;
		values[0] = (uint16_t)i;
		r.ts_ms += 1000;
		if (script_transform(w->t, &r, &out, why, sizeof(why)) != 0) {
			fprintf(stderr, "script_bench: %s\n", why);
			exit(1);
		}
		script_output_clear(&out);
	}
	return NULL;
}

/* Threads on devices 0..threads-1 with `states` states; prints us per reading. */
static void run(const char *label, struct config *cfg, size_t states, int threads, long n)
{
	struct script_transformer *t = NULL;
	if (script_transformer_new(cfg, &mctx, states, &t) != 0)
		exit(1);
	struct worker w[8];
	pthread_t th[8];
	double c0 = cpu_us(), t0 = wall_us();
	for (int i = 0; i < threads; i++) {
		w[i] = (struct worker){t, i, n / threads};
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	double cpu = cpu_us() - c0, wall = wall_us() - t0;
	printf("%-44s %7.2f us CPU/reading  %8.0f readings/s  state memory %zu bytes\n", label,
	       cpu / (double)n, (double)n / wall * 1e6, script_transformer_memory(t) / states);
	script_transformer_free(t);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
	const char *only = argc > 2 ? argv[2] : "";
	log_set_level(LOG_LVL_WARN);
	message_global_init();
	for (int i = 0; i < 8; i++) {
		char *id = malloc(16);
		snprintf(id, 16, "d%04d", i);
		devices[i] = (struct device_config){.id = id,
						    .address_text = "127.0.0.1:5020",
						    .blocks = blocks,
						    .block_count = 1,
						    .function = 3};
	}
	for (int i = 0; i < 30; i++)
		values[i] = (uint16_t)(200 + i);

	struct reading r = {.device = &devices[0],
			    .ts_ms = 1657879741000LL,
			    .values = values,
			    .value_count = 30};
	double c0 = cpu_us();
	for (long i = 0; !strcmp(only, "none") || !*only ? i < n : false; i++) {
		values[0] = (uint16_t)i;
		free(message_encode(&r, &mctx));
	}
	if (!strcmp(only, "none") || !*only)
		printf("%-44s %7.2f us CPU/reading\n", "no script (message_encode)",
		       (cpu_us() - c0) / (double)n);

	char identity[] = "function transform(msg) return msg end";
	struct config id_cfg = make_config("identity", identity, strlen(identity));
	if (!strcmp(only, "identity") || !*only)
		run("script: return msg", &id_cfg, 1, 1, n);
	if (*only && strcmp(only, "scale") != 0)
		return 0;

	size_t len = 0;
	char *scale = read_text(MODBRIDGE_BENCH_DIR "/scale30.lua", &len);
	if (!scale) {
		fprintf(stderr, "script_bench: cannot read scale30.lua\n");
		return 1;
	}
	struct config sc_cfg = make_config("scale30.lua", scale, len);
	run("script: scale30.lua (scaling, 30 names)", &sc_cfg, 1, 1, n);
	if (*only) {
		free(scale);
		return 0;
	}
	run("script: scale30.lua, 4 threads, 4 states", &sc_cfg, 4, 4, n);
	run("script: scale30.lua, 4 threads, 1 state", &sc_cfg, 1, 4, n);

	/* Memory of a freshly loaded state (nothing called yet). */
	struct script_transformer *t = NULL;
	if (script_transformer_new(&sc_cfg, &mctx, 1, &t) == 0) {
		printf("%-44s %zu bytes\n", "one loaded state of scale30.lua",
		       script_transformer_memory(t));
		script_transformer_free(t);
	}
	if (script_transformer_new(&id_cfg, &mctx, 1, &t) == 0) {
		printf("%-44s %zu bytes\n", "one loaded state of `return msg`",
		       script_transformer_memory(t));
		script_transformer_free(t);
	}
	free(scale);
	return 0;
}
