/*
 * config_script.c - the script keys: logger.script (the JSON transformer, with the router's
 * use_script switch) and mqtt.script_topics; see docs/scripts.md, docs/configuration.md
 * and config_internal.h.
 *
 * Each script file is read here, and its text kept in the configuration: the daemon runs
 * exactly the text that was checked, whatever happens to the file afterwards. Once the
 * whole file is parsed, config_check_scripts compiles each script and runs its top level
 * in a sandbox (script_check), so `check`, `run` and a reload refuse a script that does not
 * compile, fails at its top level or lacks its function, with the script's own file:line.
 * Runs on the loading thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "error.h"
#include "script.h"
#include "topic.h"

/* A script is code, not data: a bound that only stops a wrong path from eating RAM. */
#define SCRIPT_FILE_MAX ((size_t)1024 * 1024)

static const char *const script_topic_keys[] = {"topic", "script"};

/* Reads the script at path into *text; reports the failure at line under key. */
static bool read_script(struct config_ctx *c, int line, const char *key, const char *path,
			char **text, size_t *len)
{
	char why[128];
	int rc = yamldoc_read_file(path, SCRIPT_FILE_MAX, text, len, why, sizeof(why));
	if (rc == MB_ERR_NOMEM)
		c->nomem = true;
	else if (rc)
		config_report(c, CONFIG_ERROR, line, key, "cannot read '%s': %s", path, why);
	return rc == 0;
}

void config_parse_logger_script(struct config_ctx *c, const struct config_obj *o)
{
	struct logger_config *l = &c->cfg->logger;
	const char *name;
	bool use = true;
	int set_use = config_get_bool(o, "use_script", &use);
	int set = config_get_text(o, "script", &name);

	if (set_use == 1 && use && set == 0)
		config_obj_error(o, "use_script",
				 "true, but logger.script names no script (the file with "
				 "transform(msg); see docs/scripts.md)");
	if (set != 1 || !use)
		return;
	c->logger_script_line = config_obj_line(o, "script");
	if (!*name) {
		config_obj_error(o, "script", "must not be empty (remove the key for no script)");
		return;
	}
	if (config_get_path(o, "script", false, false, &l->script_path) != 1)
		return;
	if (!(l->script = strdup(name))) {
		c->nomem = true;
		return;
	}
	if (!read_script(c, c->logger_script_line, "logger.script", l->script_path,
			 &l->script_source, &l->script_len)) {
		free(l->script);
		l->script = NULL;
	}
}

void config_parse_script_topics(struct config_ctx *c, const struct config_obj *o)
{
	const struct yamldoc_node *v = config_obj_get(o, "script_topics");
	struct mqtt_config *m = &c->cfg->mqtt;

	if (!v)
		return;
	if (yamldoc_kind(v) != YAMLDOC_SEQUENCE) {
		config_obj_error(o, "script_topics", "expected a list of {topic, script}, got %s",
				 config_kind_name(v));
		return;
	}
	size_t n = yamldoc_seq_len(v);
	for (size_t i = 0; i < n; i++) {
		const struct yamldoc_node *item = yamldoc_seq_item(c->doc, v, i);
		struct script_topic_config e = {0};
		char path[CONFIG_KEY_LEN], key[CONFIG_KEY_LEN + 8];
		struct config_obj p;
		const char *t, *why;

		snprintf(path, sizeof(path), "mqtt.script_topics[%zu]", i);
		if (i >= CONFIG_MAX_SCRIPT_TOPICS) {
			config_report(c, CONFIG_ERROR, yamldoc_line(item), path,
				      "too many script topics (allowed: at most %d)",
				      CONFIG_MAX_SCRIPT_TOPICS);
			break;
		}
		if (!item || yamldoc_kind(item) != YAMLDOC_MAPPING) {
			config_report(c, CONFIG_ERROR, yamldoc_line(item), path,
				      "expected a mapping {topic, script}, got %s",
				      item ? config_kind_name(item) : "nothing");
			continue;
		}
		config_obj_scan(&p, c, item, path, yamldoc_line(item), script_topic_keys,
				ARRAY_SIZE(script_topic_keys));
		int rt = config_get_text(&p, "topic", &t);
		if (rt == 0)
			config_obj_error(&p, "topic",
					 "required (the topic whose messages run the script, such as "
					 "[IMEI]/script)");
		else if (rt == 1 && *(why = topic_filter_problem(t)))
			config_obj_error(&p, "topic", "%s", why);
		else if (rt == 1)
			e.topic = strdup(t);
		else
			t = NULL;
		if (e.topic) {
			/* One topic, one meaning: a command, a script, data or status. */
			const char *clash = NULL, *what = NULL;
			for (size_t j = 0; j < m->at_topic_count && !clash; j++)
				if (topic_matches(m->at_topics[j].topic, e.topic) ||
				    topic_matches(e.topic, m->at_topics[j].topic))
					clash = m->at_topics[j].topic, what = "the AT topic";
			for (size_t j = 0; j < m->script_topic_count && !clash; j++)
				if (!strcmp(m->script_topics[j].topic, e.topic))
					clash = e.topic, what = "another script topic";
			if (!clash && c->cfg->logger.topic &&
			    topic_matches(e.topic, c->cfg->logger.topic))
				clash = c->cfg->logger.topic, what = "the logger topic";
			if (clash) {
				config_obj_error(&p, "topic", "'%.64s' overlaps %s '%.64s'",
						 e.topic, what, clash);
				free(e.topic);
				e.topic = NULL;
			}
		}
		int rs = config_get_text(&p, "script", &t);
		if (rs == 0)
			config_obj_error(&p, "script",
					 "required (the file with on_message(topic, payload, props))");
		else if (rs == 1 && !*t)
			config_obj_error(&p, "script", "must not be empty");
		else if (rs == 1 &&
			 config_get_path(&p, "script", false, false, &e.script_path) == 1 &&
			 !(e.script = strdup(t)))
			c->nomem = true;
		snprintf(key, sizeof(key), "mqtt.script_topics[%zu].script", i);
		int line = config_obj_line(&p, "script");
		if (e.topic && e.script &&
		    read_script(c, line, key, e.script_path, &e.source, &e.len)) {
			c->script_topic_line[m->script_topic_count] = line;
			c->script_topic_index[m->script_topic_count] = i;
			m->script_topics[m->script_topic_count++] = e;
		} else {
			free(e.topic);
			free(e.script);
			free(e.script_path);
			free(e.source);
		}
	}
}

static void check_one(struct config_ctx *c, int line, const char *key, const char *name,
		      const char *source, size_t len, const char *entry)
{
	char why[SCRIPT_ERROR_MAX];
	int rc = script_check(c->cfg, name, source, len, entry, NULL, why, sizeof(why));
	if (rc == MB_ERR_NOMEM)
		c->nomem = true;
	else if (rc)
		config_report(c, CONFIG_ERROR, line, key, "%s", why);
}

void config_check_scripts(struct config_ctx *c)
{
	const struct config *cfg = c->cfg;
	if (cfg->logger.script_source)
		check_one(c, c->logger_script_line, "logger.script", cfg->logger.script,
			  cfg->logger.script_source, cfg->logger.script_len, "transform");
	for (size_t i = 0; i < cfg->mqtt.script_topic_count; i++) {
		const struct script_topic_config *e = &cfg->mqtt.script_topics[i];
		char key[CONFIG_KEY_LEN];
		snprintf(key, sizeof(key), "mqtt.script_topics[%zu].script",
			 c->script_topic_index[i]);
		check_one(c, c->script_topic_line[i], key, e->script, e->source, e->len,
			  "on_message");
	}
}
