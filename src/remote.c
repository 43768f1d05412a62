/*
 * remote.c - AT commands over MQTT; see remote.h.
 *
 * Threading: on_message() runs on the MQTT network thread and only copies the message into
 * the queue (a payload longer than COMMAND_MAX_LEN is not copied at all: it is answered
 * "command too long" from its size). The worker thread takes jobs in order, executes them
 * and publishes the replies; mqtt_link_publish_reply() is safe from any thread. The queue,
 * its length and the stop flag are guarded by `lock`.
 *
 * Where a reply goes: the response topic paired with the AT topic the command came in on;
 * an MQTT 5 request's own response topic instead, unless it is not a valid topic or would
 * land on one of our AT topics, the logger topic or the status topic (a reply there would
 * be taken for a command, or for data). The refusal is noted in the audit line.
 */
#include "remote.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "error.h"
#include "liveness.h"
#include "log.h"
#include "script.h"
#include "topic.h"

/* Commands waiting at most; more are answered "busy" at once. */
#define MAX_PENDING 16
/* Largest message a topic script is given; a larger one is dropped (and logged). */
#define SCRIPT_PAYLOAD_MAX ((size_t)1024 * 1024)
/* Longest command text shown in an audit line. */
#define AUDIT_TEXT_MAX 200

struct job {
	int script;        /* -1: a command; else the index of the script topic it came in on */
	char *topic;       /* the AT topic the command came in on */
	char *reply_topic; /* where the reply goes */
	char note[160];    /* for the audit line: why the request's response topic was not used */
	char *payload;     /* NULL when too long to keep (len says how long) */
	size_t len;
	void *correlation;
	size_t correlation_len;
	struct job *next;
};

struct topic_pair {
	char *filter;   /* [IMEI] replaced */
	char *response; /* [IMEI] replaced */
};

struct remote {
	const struct config *cfg;
	struct mqtt_link *link;
	struct command_env env;
	struct remote_hooks hooks;
	struct topic_pair pairs[CONFIG_MAX_AT_TOPICS];
	size_t pair_count;
	char *logger_topic;
	char *status_topic;
	char *script_filters[CONFIG_MAX_SCRIPT_TOPICS]; /* [IMEI] replaced */
	size_t script_count;
	bool script_failing[CONFIG_MAX_SCRIPT_TOPICS]; /* worker only: episode of each */
	const char *forbidden[CONFIG_MAX_AT_TOPICS + CONFIG_MAX_SCRIPT_TOPICS + 2];
	struct script_topics *scripts;

	pthread_t thread;
	bool started;
	atomic_uint_fast64_t received, refused; /* commands answered, and of them ERROR */
	pthread_mutex_t lock;                   /* guards everything below */
	pthread_cond_t wake;
	struct job *head, *tail;
	size_t pending;
	bool stopping;
};

static void job_free(struct job *j)
{
	if (!j)
		return;
	free(j->topic);
	free(j->reply_topic);
	free(j->payload);
	free(j->correlation);
	free(j);
}

/* Publishes a reply and writes the audit line. */
static void reply_and_audit(struct remote *r, const struct job *j, const struct command_reply *rep)
{
	char shown[AUDIT_TEXT_MAX + 8];
	size_t len = 0;
	char *text = command_reply_text(rep, "\r\n", &len);
	const char *sent = "";

	command_audit_text(j->payload, j->len, shown, sizeof(shown));
	/* Counted before the reply goes: whoever sees the reply sees the count. */
	atomic_fetch_add(&r->received, 1);
	if (!rep->ok || rep->nomem)
		atomic_fetch_add(&r->refused, 1);
	if (!text)
		sent = " (reply not sent: out of memory)";
	else if (mqtt_link_publish_reply(r->link, j->reply_topic, text, len, r->cfg->mqtt.qos,
					 j->correlation, j->correlation_len, NULL) != 0)
		sent = " (reply not sent: not connected to the broker)";
	if (rep->ok && !rep->nomem)
		log_info("remote: '%s' on %s -> OK, reply on %s%s%s", shown, j->topic,
			 j->reply_topic, j->note, sent);
	else
		log_info("remote: '%s' on %s -> ERROR: %s, reply on %s%s%s", shown, j->topic,
			 rep->nomem ? "out of memory" : rep->error, j->reply_topic, j->note, sent);
	free(text);
}

static void refuse(struct remote *r, const struct job *j, const char *why)
{
	struct command_reply rep = {.ok = false};
	snprintf(rep.error, sizeof(rep.error), "%s", why);
	reply_and_audit(r, j, &rep);
}

static void run_script(struct remote *r, const struct job *j)
{
	struct script_topic_message msg = {
		.topic = j->topic,
		.payload = j->payload,
		.len = j->payload ? j->len : 0,
		.response_topic = j->reply_topic,
		.correlation = j->correlation,
		.correlation_len = j->correlation_len,
	};
	char why[SCRIPT_ERROR_MAX];
	const char *name = r->cfg->mqtt.script_topics[j->script].script;
	int rc = script_topic_run(r->scripts, (size_t)j->script, &msg, why, sizeof(why));
	if (rc && !r->script_failing[j->script])
		log_error("script %s: %s (message on %s); logged once until it works again", name,
			  rc == MB_ERR_SCRIPT ? why : mb_strerror(rc), j->topic);
	else if (!rc && r->script_failing[j->script])
		log_info("script %s: works again", name);
	else if (rc)
		log_debug("script %s: %s", name, why);
	r->script_failing[j->script] = rc != 0;
}

static void *worker_main(void *arg)
{
	struct remote *r = arg;

	thread_set_name("mb-remote");
	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!r->head && !r->stopping)
			pthread_cond_wait(&r->wake, &r->lock);
		struct job *j = r->head;
		if (!j)
			break; /* stopping, nothing left */
		r->head = j->next;
		if (!r->head)
			r->tail = NULL;
		r->pending--;
		bool stopping = r->stopping;
		pthread_mutex_unlock(&r->lock);

		if (j->script >= 0) {
			if (!stopping)
				run_script(r, j);
		} else if (stopping) {
			refuse(r, j,
			       "the gateway is stopping or restarting; the command was not executed");
		} else {
			struct command_reply rep;
			command_execute(&r->env, j->payload, j->len, &rep);
			reply_and_audit(r, j, &rep);
			if (rep.restart && r->hooks.restart)
				r->hooks.restart(r->hooks.ctx);
			command_reply_clear(&rep);
		}
		job_free(j);
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* May a request's own response topic receive our reply? */
static bool reply_topic_allowed(const struct remote *r, const char *topic, char *why, size_t len)
{
	if (!topic_publishable(topic)) {
		snprintf(why, len, "not a valid topic");
		return false;
	}
	for (size_t i = 0; i < r->pair_count; i++) {
		if (topic_matches(r->pairs[i].filter, topic)) {
			snprintf(why, len, "it is a command topic");
			return false;
		}
	}
	if ((r->logger_topic && !strcmp(topic, r->logger_topic)) ||
	    (r->status_topic && !strcmp(topic, r->status_topic))) {
		snprintf(why, len, "it is the %s topic",
			 r->logger_topic && !strcmp(topic, r->logger_topic) ? "logger" : "status");
		return false;
	}
	return true;
}

/* On the MQTT network thread: copy, queue, return. */
static void on_message(void *ctx, const struct mqtt_message *msg)
{
	struct remote *r = ctx;
	const struct topic_pair *pair = NULL;
	struct job *j;
	char why[64];

	int script = -1;
	for (size_t i = 0; i < r->pair_count && !pair; i++)
		if (topic_matches(r->pairs[i].filter, msg->topic))
			pair = &r->pairs[i];
	for (size_t i = 0; !pair && script < 0 && i < r->script_count; i++)
		if (topic_matches(r->script_filters[i], msg->topic))
			script = (int)i;
	if (!pair && script < 0)
		return; /* not one of ours (a subscription of an earlier session) */
	if (script >= 0 && msg->len > SCRIPT_PAYLOAD_MAX) {
		log_warn("remote: a message of %zu bytes on script topic %s was dropped (at most %zu)",
			 msg->len, msg->topic, SCRIPT_PAYLOAD_MAX);
		return;
	}

	j = calloc(1, sizeof(*j));
	if (!j)
		goto nomem;
	j->script = script;
	j->len = msg->len;
	j->topic = strdup(msg->topic);
	if (script >= 0) {
		/* A script gets the request's response topic as it came, and decides. */
		if (msg->response_topic)
			j->reply_topic = strdup(msg->response_topic);
		if (msg->response_topic && !j->reply_topic)
			goto nomem;
	} else if (msg->response_topic &&
		   reply_topic_allowed(r, msg->response_topic, why, sizeof(why))) {
		j->reply_topic = strdup(msg->response_topic);
	} else {
		j->reply_topic = strdup(pair->response);
		if (msg->response_topic)
			snprintf(j->note, sizeof(j->note),
				 " (the request's response topic was not used: %s)", why);
	}
	if (!j->topic || (script < 0 && !j->reply_topic))
		goto nomem;
	if (msg->len <= COMMAND_MAX_LEN || script >= 0) {
		j->payload = malloc(msg->len + 1);
		if (!j->payload)
			goto nomem;
		if (msg->len)
			memcpy(j->payload, msg->payload, msg->len);
		j->payload[msg->len] = '\0';
	}
	if (msg->correlation) {
		j->correlation = malloc(msg->correlation_len ? msg->correlation_len : 1);
		if (!j->correlation)
			goto nomem;
		if (msg->correlation_len)
			memcpy(j->correlation, msg->correlation, msg->correlation_len);
		j->correlation_len = msg->correlation_len;
	}

	pthread_mutex_lock(&r->lock);
	bool busy = r->pending >= MAX_PENDING;
	if (!busy) {
		if (r->tail)
			r->tail->next = j;
		else
			r->head = j;
		r->tail = j;
		r->pending++;
		pthread_cond_signal(&r->wake);
	}
	pthread_mutex_unlock(&r->lock);
	if (busy && script >= 0) {
		log_warn("remote: %d messages are waiting; a message on script topic %s was dropped",
			 MAX_PENDING, msg->topic);
		job_free(j);
	} else if (busy) {
		char text[96];
		snprintf(text, sizeof(text), "busy: %d commands are waiting; try again later",
			 MAX_PENDING);
		refuse(r, j, text);
		job_free(j);
	}
	return;
nomem:
	log_error("remote: out of memory; a command on %s was dropped", msg->topic);
	job_free(j);
}

/* modbridge.publish from a script, on the worker. */
static int script_publish(void *ctx, const char *topic, const void *payload, size_t len, int qos,
			  bool retain)
{
	struct remote *r = ctx;
	return mqtt_link_publish_ex(r->link, topic, payload, len, qos, retain, NULL);
}

/* modbridge.read/write from a script: the GETMODBUS/SETMODBUS command, on the worker. */
static void script_command(void *ctx, const char *line, struct command_reply *reply)
{
	struct remote *r = ctx;
	command_execute(&r->env, line, strlen(line), reply);
}

int remote_new(const struct config *cfg, struct mqtt_link *link, struct store *store,
	       struct modem *modem, const struct remote_hooks *hooks, struct remote **out)
{
	struct remote *r = calloc(1, sizeof(*r));
	if (!r)
		return MB_ERR_NOMEM;
	r->cfg = cfg;
	r->link = link;
	r->hooks = *hooks;
	r->env = (struct command_env){
		.cfg = cfg,
		.store = store,
		.modem = modem,
		.link = link,
		.daemon = true,
	};
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->wake, NULL);

	r->logger_topic = config_subst_imei(cfg->logger.topic, cfg->imei);
	if (!r->logger_topic)
		goto nomem;
	if (cfg->mqtt.status_topic &&
	    !(r->status_topic = config_subst_imei(cfg->mqtt.status_topic, cfg->imei)))
		goto nomem;
	for (size_t i = 0; i < cfg->mqtt.at_topic_count; i++) {
		struct topic_pair *p = &r->pairs[r->pair_count];
		p->filter = config_subst_imei(cfg->mqtt.at_topics[i].topic, cfg->imei);
		p->response = config_subst_imei(cfg->mqtt.at_topics[i].response, cfg->imei);
		r->pair_count++;
		if (!p->filter || !p->response ||
		    mqtt_link_subscribe(link, p->filter, cfg->mqtt.qos) != 0)
			goto nomem;
		log_info("remote: commands on %s, replies on %s", p->filter, p->response);
	}
	for (size_t i = 0; i < cfg->mqtt.script_topic_count; i++) {
		r->script_filters[i] =
			config_subst_imei(cfg->mqtt.script_topics[i].topic, cfg->imei);
		r->script_count++;
		if (!r->script_filters[i] ||
		    mqtt_link_subscribe(link, r->script_filters[i], cfg->mqtt.qos) != 0)
			goto nomem;
		log_info("remote: script %s runs on messages on %s",
			 cfg->mqtt.script_topics[i].script, r->script_filters[i]);
	}
	if (r->script_count) {
		/* What a script may not publish on: a command, a script trigger, data, status. */
		size_t n = 0;
		for (size_t i = 0; i < r->pair_count; i++)
			r->forbidden[n++] = r->pairs[i].filter;
		for (size_t i = 0; i < r->script_count; i++)
			r->forbidden[n++] = r->script_filters[i];
		r->forbidden[n++] = r->logger_topic;
		if (r->status_topic)
			r->forbidden[n++] = r->status_topic;
		struct script_io io = {
			.publish = script_publish,
			.command = script_command,
			.forbidden = r->forbidden,
			.forbidden_count = n,
			.ctx = r,
		};
		int rc = script_topics_new(cfg, &io, &r->scripts);
		if (rc) {
			remote_free(r);
			return rc;
		}
	}
	mqtt_link_on_message(link, on_message, r);
	*out = r;
	return 0;
nomem:
	remote_free(r);
	return MB_ERR_NOMEM;
}

int remote_start(struct remote *r, struct poller *poller)
{
	r->env.poller = poller;
	if (pthread_create(&r->thread, NULL, worker_main, r) != 0)
		return MB_ERR_NOMEM;
	r->started = true;
	return 0;
}

void remote_stats(struct remote *r, uint64_t *received, uint64_t *refused)
{
	*received = r ? atomic_load(&r->received) : 0;
	*refused = r ? atomic_load(&r->refused) : 0;
}

void remote_stop(struct remote *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stopping = true;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
}

void remote_free(struct remote *r)
{
	if (!r)
		return;
	remote_stop(r);
	if (r->started)
		pthread_join(r->thread, NULL);
	/* Without a worker (never started), queued commands are dropped unanswered. */
	while (r->head) {
		struct job *j = r->head;
		r->head = j->next;
		job_free(j);
	}
	for (size_t i = 0; i < r->pair_count; i++) {
		free(r->pairs[i].filter);
		free(r->pairs[i].response);
	}
	script_topics_free(r->scripts);
	for (size_t i = 0; i < r->script_count; i++)
		free(r->script_filters[i]);
	free(r->logger_topic);
	free(r->status_topic);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->wake);
	free(r);
}
