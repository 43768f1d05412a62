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
#include "topic.h"

/* Commands waiting at most; more are answered "busy" at once. */
#define MAX_PENDING 16
/* Longest command text shown in an audit line. */
#define AUDIT_TEXT_MAX 200

struct job {
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

		if (stopping) {
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

	for (size_t i = 0; i < r->pair_count && !pair; i++)
		if (topic_matches(r->pairs[i].filter, msg->topic))
			pair = &r->pairs[i];
	if (!pair)
		return; /* not one of ours (a subscription of an earlier session) */

	j = calloc(1, sizeof(*j));
	if (!j)
		goto nomem;
	j->len = msg->len;
	j->topic = strdup(msg->topic);
	if (msg->response_topic && reply_topic_allowed(r, msg->response_topic, why, sizeof(why))) {
		j->reply_topic = strdup(msg->response_topic);
	} else {
		j->reply_topic = strdup(pair->response);
		if (msg->response_topic)
			snprintf(j->note, sizeof(j->note),
				 " (the request's response topic was not used: %s)", why);
	}
	if (!j->topic || !j->reply_topic)
		goto nomem;
	if (msg->len <= COMMAND_MAX_LEN) {
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
	if (busy) {
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
	free(r->logger_topic);
	free(r->status_topic);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->wake);
	free(r);
}
