/*
 * config_logger.c - the `logger` section of the configuration: what the messages look
 * like (id, time format, arrays, error messages), where they go (topic, store file) and
 * the bounds of the store and of the memory buffer; see docs/configuration.md,
 * docs/logger.md and config_internal.h. Runs on the loading thread.
 */
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "topic.h"

static const char *const logger_keys[] = {
	"id",
	"send_mode",
	"time_format",
	"array",
	"array_max_count",
	"array_max_bytes",
	"error_messages",
	"store",
	"mode",
	"topic",
	"use_script",
	"inflight_window",
	"max_messages",
	"max_bytes",
	"full_policy",
	"memory_max_messages",
	"memory_max_bytes",
};

_Static_assert(ARRAY_SIZE(logger_keys) <= CONFIG_MAX_KEYS,
	       "struct config_obj holds at most CONFIG_MAX_KEYS keys");

static const struct config_choice full_policies[] = {
	{"drop_oldest", STORE_DROP_OLDEST},
	{"drop_newest", STORE_DROP_NEWEST},
};

static const struct config_choice send_modes[] = {
	{"fifo", SEND_FIFO},
	{"lifo", SEND_LIFO},
};

static const struct config_choice modes[] = {
	{"mqtt", LOGGER_MQTT},
	{"http", LOGGER_HTTP},
	{"web", LOGGER_HTTP}, /* the router's name for it */
	{"ftp", LOGGER_FTP},
};

static const struct config_choice time_formats[] = {
	{"iso8601", TIME_ISO8601},
	{"iso", TIME_ISO8601},
	{"unix", TIME_UNIX},
};

void config_parse_logger(struct config_ctx *c, const struct config_obj *top)
{
	const struct yamldoc_node *map =
		config_get_mapping(top, "logger", "logger keys (id, send_mode, topic, ...)");
	struct logger_config *l = &c->cfg->logger;
	struct config_obj o;
	const char *t;
	bool b;
	int v;

	config_obj_scan(&o, c, map, "logger", config_obj_line(top, "logger"), logger_keys,
			ARRAY_SIZE(logger_keys));
	config_get_strdup(&o, "id", &l->id);
	if (config_get_choice(&o, "send_mode", send_modes, ARRAY_SIZE(send_modes), "fifo, lifo",
			      &v) == 1)
		l->send_mode = (enum send_mode)v;
	if (config_get_choice(&o, "time_format", time_formats, ARRAY_SIZE(time_formats),
			      "iso8601, iso, unix", &v) == 1)
		l->time_format = (enum time_format)v;
	config_get_bool(&o, "array", &l->array);
	config_get_int(&o, "array_max_count", 1, 1000, " messages", &l->array_max_count);
	long long bytes;
	if (config_get_ll(&o, "array_max_bytes", 1024, 16777216, " bytes", &bytes) == 1)
		l->array_max_bytes = (size_t)bytes;
	config_get_bool(&o, "error_messages", &l->error_messages);
	config_get_path(&o, "store", false, false, &l->store_path);

	if (config_get_choice(&o, "mode", modes, ARRAY_SIZE(modes), "mqtt, http, ftp", &v) == 1)
		l->mode = (enum logger_mode)v;

	if (config_get_text(&o, "topic", &t) == 1) {
		const char *why = topic_publish_problem(t);

		char *topic;

		if (*why) {
			config_obj_error(&o, "topic", "%s", why);
		} else if (!(topic = strdup(t))) {
			c->nomem = true;
		} else {
			free(l->topic);
			l->topic = topic;
		}
	}

	if (config_get_bool(&o, "use_script", &b) == 1 && b)
		config_obj_error(&o, "use_script",
				 "JSON transformer scripts are not supported yet (allowed: false)");
	config_get_int(&o, "inflight_window", 1, 1000, "", &l->inflight_window);

	/* Bounds of the store and of the memory buffer used while the store fails. */
	long long n;
	if (config_get_ll(&o, "max_messages", 0, 1000000000LL, " readings", &n) == 1)
		l->max_messages = n;
	if (config_get_ll(&o, "max_bytes", 0, 1LL << 40, " bytes", &n) == 1)
		l->max_bytes = n;
	if (config_get_choice(&o, "full_policy", full_policies, ARRAY_SIZE(full_policies),
			      "drop_oldest, drop_newest", &v) == 1)
		l->full_policy = (enum store_full_policy)v;
	if (config_get_ll(&o, "memory_max_messages", 1, 10000000LL, " readings", &n) == 1)
		l->memory_max_messages = n;
	if (config_get_ll(&o, "memory_max_bytes", 1024, 1LL << 32, " bytes", &n) == 1)
		l->memory_max_bytes = n;
}
