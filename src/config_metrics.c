/*
 * config_metrics.c - the `metrics` section of the configuration: the Prometheus exporter's
 * listener; see config_metrics.h, docs/configuration.md and config_internal.h.
 *
 * A numeric address (or localhost), as for the web UI, so that what `check` shows is what
 * the daemon binds.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"
#include "error.h"

static const char *const metrics_keys[] = {"listen"};

void config_parse_metrics(struct config_ctx *c, const struct config_obj *top)
{
	const struct yamldoc_node *map =
		config_get_mapping(top, "metrics", "metrics keys (listen)");
	struct metrics_config *m = &c->cfg->metrics;
	struct config_obj o;
	unsigned char addr[16];
	char err[256];
	const char *t;

	config_obj_scan(&o, c, map, "metrics", config_obj_line(top, "metrics"), metrics_keys,
			ARRAY_SIZE(metrics_keys));
	m->line = config_obj_line(&o, "listen");
	if (config_get_text(&o, "listen", &t) != 1)
		return; /* off */
	if (!*t) {
		config_obj_error(&o, "listen",
				 "must not be empty (remove the key to turn the metrics off)");
		return;
	}
	if (!(m->listen = strdup(t))) {
		c->nomem = true;
		return;
	}
	int rc = config_parse_host_port(t, CONFIG_METRICS_PORT, &m->host, &m->port, err,
					sizeof(err));
	if (rc == MB_ERR_NOMEM) {
		c->nomem = true;
		return;
	}
	if (rc < 0) {
		config_obj_error(&o, "listen", "%s (expected address:port, such as 127.0.0.1:%d)",
				 err, CONFIG_METRICS_PORT);
		return;
	}
	if (!strcasecmp(m->host, "localhost")) {
		free(m->host);
		if (!(m->host = strdup("127.0.0.1"))) {
			c->nomem = true;
			return;
		}
	}
	if (inet_pton(AF_INET, m->host, addr) != 1 && inet_pton(AF_INET6, m->host, addr) != 1)
		config_obj_error(
			&o, "listen",
			"'%.64s' is not an IP address (allowed: an address of this gateway such as 127.0.0.1, 0.0.0.0 or ::, or localhost)",
			m->host);
}

void config_metrics_free(struct metrics_config *m)
{
	free(m->listen);
	free(m->host);
}
