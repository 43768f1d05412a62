/*
 * web_api.c - the web UI's read-only views and actions: status, log, Test, plan, AT
 * console; see web_internal.h.
 *
 * Each reuses what the command line and the remote commands use: the status gathers what
 * AT+MBSTATUS does (store_stats, poller_device_status, the MQTT link) plus the last
 * readings; Test reads through the poller's queue (poller_read_device) and shows what
 * message_encode makes of the reading, as `modbridge read` does; the plan is busplan's
 * report, as `check` prints it; the console runs command_execute with the daemon's
 * permissions, as a command on an AT topic, and writes the same audit line.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomicfile.h"
#include "busplan.h"
#include "command.h"
#include "error.h"
#include "log.h"
#include "message.h"
#include "mqtt.h"
#include "poller.h"
#include "store.h"
#include "timeutil.h"
#include "uplink_stats.h"
#include "web_internal.h"

/* How long a Test waits for its line: a poll in progress on a slow bus finishes first. */
#define TEST_WAIT_MS 10000
#define LOG_LINES_MAX 500

static void ktime(struct web_json *j, const char *key, int64_t ms)
{
	char t[40];

	if (!ms) {
		web_json_key(j, key);
		web_json_null(j);
		return;
	}
	time_format_iso8601(ms, t, sizeof(t));
	web_json_kstr(j, key, t);
}

/*
 * The uplink that carries the readings (logger.mode): its state, last success and last
 * error (uplink_stats: what `queue` and AT+MBSTATUS print). enabled, broker and connected
 * are the MQTT link's, which in http and ftp mode carries the AT commands only.
 * state: mqtt mode "connected", "not connected" or "disabled"; http and ftp mode "ok"
 * (the last attempt succeeded), "failing" or "waiting" (nothing tried yet).
 */
static void status_uplink(struct web_json *j, const struct web_env *env)
{
	static const char *const modes[] = {"mqtt", "http", "ftp"};
	const struct mqtt_config *m = &env->cfg->mqtt;
	enum logger_mode mode = env->cfg->logger.mode;
	struct uplink_status us = {0};
	char err[sizeof(us.last_error)] = "";
	int64_t err_at = 0;
	bool connected = env->link && mqtt_link_connected(env->link);
	const char *state;

	if (env->link)
		err_at = mqtt_link_last_error(env->link, err, sizeof(err));
	else if (m->enabled)
		snprintf(err, sizeof(err), "no link");
	if (env->stats)
		uplink_stats_get(env->stats, &us);
	if (mode == LOGGER_MQTT) {
		state = !m->enabled ? "disabled" : connected ? "connected" : "not connected";
		if (err[0]) { /* the link says more than "the connection was lost" */
			snprintf(us.last_error, sizeof(us.last_error), "%s", err);
			us.last_error_ms = err_at;
		}
	} else {
		state = us.failing ? "failing" : us.last_ok_ms ? "ok" : "waiting";
	}
	web_json_key(j, "uplink");
	web_json_obj(j);
	web_json_kstr(j, "mode", modes[mode]);
	web_json_kstr(j, "kind", modes[mode]); /* the name of the first version */
	web_json_kstr(j, "target", us.target[0] ? us.target : NULL);
	web_json_kstr(j, "state", state);
	ktime(j, "last_success_at", us.last_ok_ms);
	web_json_kstr(j, "last_error", us.last_error[0] ? us.last_error : NULL);
	ktime(j, "last_error_at", us.last_error[0] ? us.last_error_ms : 0);
	web_json_kint(j, "messages", (long long)us.messages);
	web_json_kint(j, "readings", (long long)us.readings);
	web_json_kint(j, "failures", (long long)us.failures);
	web_json_kint(j, "rejected", (long long)us.rejected);
	web_json_kbool(j, "enabled", m->enabled);
	web_json_kstr(j, "broker", m->broker);
	web_json_kbool(j, "connected", connected);
	web_json_kstr(j, "mqtt_last_error", err[0] ? err : NULL);
	ktime(j, "mqtt_last_error_at", err_at);
	web_json_obj_end(j);
}

static void status_backlog(struct web_json *j, const struct web_env *env)
{
	struct store_stats st;

	web_json_key(j, "backlog");
	web_json_obj(j);
	if (env->store && store_stats(env->store, &st) == 0) {
		web_json_kint(j, "count", st.count);
		web_json_kint(j, "bytes", st.payload_bytes);
		ktime(j, "oldest", st.oldest_ts_ms);
		ktime(j, "newest", st.newest_ts_ms);
		web_json_kint(j, "sent", st.sent);
		web_json_kint(j, "dropped", st.dropped);
		web_json_kint(j, "size", st.size_bytes);
	} else {
		web_json_kstr(j, "error", "the store cannot be read");
	}
	web_json_obj_end(j);
}

static void status_device(struct web_json *j, struct web_req *r, const struct device_config *d)
{
	struct poll_device_status ds;
	bool polled = r->env->poller && poller_device_status(r->env->poller, d, &ds) == 0;

	web_json_obj(j);
	web_json_kstr(j, "id", d->id);
	web_json_kstr(j, "address", d->address_text);
	web_json_kbool(j, "polled", polled);
	if (!polled) {
		web_json_kstr(j, "health", "not polled");
	} else {
		web_json_kstr(j, "health",
			      ds.reads == 0      ? "waiting"
			      : ds.last_error[0] ? "failing"
						 : "ok");
		web_json_kint(j, "reads", (long long)ds.reads);
		web_json_kint(j, "failures", (long long)ds.failures);
		ktime(j, "last_read", ds.last_read_ms);
		ktime(j, "last_ok", ds.last_ok_ms);
		web_json_kstr(j, "last_error", ds.last_error[0] ? ds.last_error : NULL);
	}
	pthread_mutex_lock(&r->w->last_lock);
	for (size_t i = 0; i < r->w->last_count; i++) {
		const struct web_last *l = &r->w->last[i];
		if (strcmp(l->id, d->id) != 0)
			continue;
		ktime(j, "last_message_at", l->ts_ms);
		web_json_key(j, "last_message");
		web_json_raw(j, l->json);
		ktime(j, "last_error_message_at", l->err_ts_ms);
		web_json_key(j, "last_error_message");
		web_json_raw(j, l->err_json);
	}
	pthread_mutex_unlock(&r->w->last_lock);
	web_json_obj_end(j);
}

void web_handle_status(struct web_req *r)
{
	const struct config *cfg = r->env->cfg;
	struct web_json j = {0};
	size_t len = 0;
	int64_t now = time_now_ms();

	web_json_obj(&j);
	web_json_kbool(&j, "ok", true);
	web_json_kstr(&j, "identity", cfg->imei);
	web_json_kstr(&j, "version", MODBRIDGE_VERSION);
	ktime(&j, "now", now);
	ktime(&j, "started", r->env->started_ms);
	web_json_kint(&j, "uptime_s", (now - r->env->started_ms) / 1000);
	status_uplink(&j, r->env);
	status_backlog(&j, r->env);
	web_json_key(&j, "devices");
	web_json_arr(&j);
	for (size_t i = 0; i < cfg->device_count; i++)
		status_device(&j, r, &cfg->devices[i]);
	web_json_arr_end(&j);
	web_json_obj_end(&j);
	char *out = web_json_finish(&j, &len);
	web_reply_json(r, 200, out, len);
}

struct log_copy {
	struct web_json *j;
	const char *filter; /* only lines containing it, or NULL */
};

static void copy_line(void *ctx, const struct log_ring_line *l)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	struct log_copy *c = ctx;

	if (c->filter && *c->filter && !strstr(l->text, c->filter))
		return;
	web_json_obj(c->j);
	web_json_kint(c->j, "seq", (long long)l->seq);
	ktime(c->j, "time", l->ts_ms);
	web_json_kstr(c->j, "level", (unsigned)l->level < 4 ? names[l->level] : "?");
	web_json_kstr(c->j, "text", l->text);
	web_json_obj_end(c->j);
}

void web_handle_log(struct web_req *r)
{
	const char *lv = httpd_query(r->http, "level");
	const char *after = httpd_query(r->http, "after");
	enum log_level max = LOG_LVL_DEBUG;
	struct web_json j = {0};
	size_t len = 0;

	if (lv && !strcmp(lv, "error"))
		max = LOG_LVL_ERROR;
	else if (lv && !strcmp(lv, "warning"))
		max = LOG_LVL_WARN;
	else if (lv && !strcmp(lv, "info"))
		max = LOG_LVL_INFO;
	struct log_copy c = {&j, httpd_query(r->http, "q")};
	web_json_obj(&j);
	web_json_kbool(&j, "ok", true);
	web_json_key(&j, "lines");
	web_json_arr(&j);
	uint64_t newest = log_ring_read(after ? strtoull(after, NULL, 10) : 0, max, LOG_LINES_MAX,
					copy_line, &c);
	web_json_arr_end(&j);
	web_json_kint(&j, "newest", (long long)newest);
	web_json_obj_end(&j);
	char *out = web_json_finish(&j, &len);
	web_reply_json(r, 200, out, len);
}

void web_handle_at(struct web_req *r)
{
	const struct httpform_field *f = httpform_find(&r->form, "command");
	const struct web_env *env = r->env;
	struct command_reply reply;
	char shown[256];
	size_t len = 0, tlen = 0;
	struct web_json j = {0};

	if (!f) {
		web_reply_error(r, 400, "give the command in the field 'command'");
		return;
	}
	/* The permissions of the AT topics: env->cfg->remote, as for a command over MQTT. */
	struct command_env cenv = {
		.cfg = env->cfg,
		.poller = env->poller,
		.store = env->store,
		.modem = env->modem,
		.link = env->link,
		.daemon = true,
	};
	pthread_mutex_lock(&r->w->op_lock);
	command_execute(&cenv, f->value, f->value_len, &reply);
	pthread_mutex_unlock(&r->w->op_lock);
	command_audit_text(f->value, f->value_len, shown, sizeof(shown));
	if (reply.ok && !reply.nomem)
		web_audit(r, "console '%s' -> OK", shown);
	else
		web_audit(r, "console '%s' -> ERROR: %s", shown,
			  reply.nomem ? "out of memory" : reply.error);
	char *text = command_reply_text(&reply, "\n", &tlen);
	web_json_obj(&j);
	web_json_kbool(&j, "ok", reply.ok && !reply.nomem);
	web_json_key(&j, "reply");
	if (text)
		web_json_strn(&j, text, tlen);
	else
		web_json_null(&j);
	web_json_kbool(&j, "restarting", reply.restart);
	web_json_obj_end(&j);
	free(text);
	char *out = web_json_finish(&j, &len);
	web_reply_json(r, 200, out, len);
	if (reply.ok && reply.restart && env->restart)
		env->restart(env->restart_ctx);
	command_reply_clear(&reply);
}

void web_handle_test(struct web_req *r)
{
	const char *id = httpform_get(&r->form, "device");
	char *staged = NULL;
	struct config *cfg = NULL;
	struct web_json j = {0};
	struct reading rd;
	size_t len = 0;

	if (!id || !*id) {
		web_reply_error(r, 400, "name the device to test in the field 'device'");
		return;
	}
	/* The device as the form has it, checked with the whole would-be file. */
	if (web_config_stage(r, false, &staged, &cfg, NULL, NULL) != 0)
		return;
	atomicfile_discard(staged);
	free(staged);
	const struct device_config *dev = config_find_device(cfg, id);
	if (!dev) {
		web_reply_error(r, 404, "no device with id '%.64s'", id);
		config_free(cfg);
		return;
	}
	int rc = poller_read_device(r->env->poller, dev, &rd, TEST_WAIT_MS);
	if (rc) {
		web_reply_error(r, rc == MB_ERR_BUSY ? 503 : 500, "the device was not read: %s",
				rc == MB_ERR_BUSY
					? "its line stayed busy, or the gateway is stopping"
					: mb_strerror(rc));
		config_free(cfg);
		return;
	}
	/* What would be sent: the message of the running identity and logger settings. */
	struct message_context ctx = {cfg->imei, cfg->logger.id, cfg->logger.time_format};
	char *json = message_encode(&rd, &ctx);
	web_audit(r, "test of device '%s': %s", dev->id, rd.error[0] ? rd.error : "values read");
	web_json_obj(&j);
	web_json_kbool(&j, "ok", rd.error[0] == 0);
	web_json_kstr(&j, "device", dev->id);
	web_json_kstr(&j, "error", rd.error[0] ? rd.error : NULL);
	web_json_kstr(&j, "json", json);
	web_json_obj_end(&j);
	free(json);
	reading_clear(&rd);
	config_free(cfg);
	char *out = web_json_finish(&j, &len);
	web_reply_json(r, 200, out, len);
}

void web_handle_plan(struct web_req *r)
{
	struct config_diags diags = {0};
	struct config *cfg = NULL;
	char *text = NULL, *warn = NULL;
	size_t tlen = 0, wlen = 0, len = 0;
	struct web_json j = {0};

	if (config_load(r->env->cfg->path, &cfg, &diags) != 0) {
		config_diags_free(&diags);
		web_reply_error(r, 422, "the configuration file has errors (see the devices page)");
		return;
	}
	config_diags_free(&diags);
	FILE *out = open_memstream(&text, &tlen), *wf = open_memstream(&warn, &wlen);
	if (out && wf)
		busplan_report(cfg, out, wf);
	if (out)
		fclose(out);
	if (wf)
		fclose(wf);
	config_free(cfg);
	web_json_obj(&j);
	web_json_kbool(&j, "ok", true);
	web_json_kstr(&j, "plan", text ? text : "");
	web_json_kstr(&j, "warnings", warn ? warn : "");
	web_json_obj_end(&j);
	free(text);
	free(warn);
	char *o = web_json_finish(&j, &len);
	web_reply_json(r, 200, o, len);
}
