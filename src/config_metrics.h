/*
 * config_metrics.h - the `metrics` part of the configuration: where the Prometheus
 * exporter listens (metrics.c). Off unless metrics.listen is set.
 *
 * Filled by the loader (config_metrics.c; docs/configuration.md documents the key). Part
 * of a struct config (config.h): immutable once loaded, so any thread may read it; the
 * loader owns every pointer in it.
 */
#ifndef MODBRIDGE_CONFIG_METRICS_H
#define MODBRIDGE_CONFIG_METRICS_H

#include <stdbool.h>

#define CONFIG_METRICS_PORT 9510

struct metrics_config {
	char *listen; /* as written ("127.0.0.1:9510"); NULL: off */
	char *host;   /* numeric address to bind */
	int port;     /* default 9510 */
	int line;
};

#endif
