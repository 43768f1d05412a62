/*
 * mqtt.c - libmosquitto wrapper with its own network thread; see mqtt.h.
 *
 * Why our own thread instead of mosquitto_loop_start(): the library's loop retries
 * connections silently, so a wrong CA, a refused password or an unreachable broker would
 * never reach the log. Driving mosquitto_loop() ourselves lets us see every failed
 * attempt, log it once per change of reason, and apply our own back-off.
 *
 * Threading: the network thread runs mosquitto_loop() and all libmosquitto callbacks;
 * other threads call mqtt_link_publish(), which libmosquitto allows once
 * mosquitto_threaded_set() is on (it wakes the loop through its internal socket pair).
 */
#include "mqtt.h"

#include <errno.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "timeutil.h"

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
/* Debian's system trust store, used when the config names no CA. */
#define SYSTEM_CA_PATH "/etc/ssl/certs"

struct mqtt_link {
	struct mosquitto *mosq;
	const struct mqtt_config *cfg;
	char *client_id;
	struct mqtt_events ev;
	void *ctx;

	pthread_t thread;
	bool started;
	atomic_bool stop;
	atomic_bool connected;
	pthread_mutex_t lock; /* guards the back-off sleep */
	pthread_cond_t wake;

	/* Per connection attempt, written and read on the network thread only. */
	bool got_connack;
	char refusal[160];    /* CONNACK refusal text */
	char tls_error[200];  /* the last OpenSSL error the library logged */
	char last_failure[400];
};

void mqtt_global_init(void)
{
	mosquitto_lib_init();
}

void mqtt_global_cleanup(void)
{
	mosquitto_lib_cleanup();
}

/* Refuse to prompt on the terminal for a key pass phrase: a daemon has no terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)userdata;
	return 0;
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
	struct mqtt_link *link = obj;
	(void)mosq;
	link->got_connack = true;
	if (rc != 0) {
		snprintf(link->refusal, sizeof(link->refusal), "broker refused the connection: %s",
			 mosquitto_connack_string(rc));
		return;
	}
	atomic_store(&link->connected, true);
	link->last_failure[0] = '\0';
	log_info("mqtt: connected to %s as client id '%s'", link->cfg->broker,
		 link->client_id ? link->client_id : "(random)");
	if (link->cfg->tls && link->cfg->allow_all_certificates)
		log_warn("mqtt: INSECURE: allow_all_certificates is on; the broker's certificate "
			 "and host name were NOT verified. Anyone on the path can read and forge "
			 "this connection.");
	if (link->ev.connected)
		link->ev.connected(link->ctx);
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid)
{
	struct mqtt_link *link = obj;
	(void)mosq;
	if (link->ev.published)
		link->ev.published(link->ctx, mid);
}

/* libmosquitto reports TLS failures only through its log; keep the last one as the reason. */
static void on_log(struct mosquitto *mosq, void *obj, int level, const char *str)
{
	struct mqtt_link *link = obj;
	(void)mosq;
	if ((level & MOSQ_LOG_ERR) && strstr(str, "OpenSSL Error"))
		snprintf(link->tls_error, sizeof(link->tls_error), "%s", str);
	else if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
		log_debug("mqtt: libmosquitto: %s", str);
}

/* Turns what we saw during a failed attempt into one sentence a user can act on. */
static void explain_failure(struct mqtt_link *link, int rc, int err, char *out, size_t len)
{
	const char *t = link->tls_error;
	if (link->refusal[0]) {
		snprintf(out, len, "%s", link->refusal);
	} else if (strstr(t, "certificate verify failed")) {
		snprintf(out, len, "TLS: the broker's certificate could not be verified (untrusted CA, "
			 "expired, or it does not match the host name '%s'); check ca_file [%s]",
			 link->cfg->host, t);
	} else if (strstr(t, "certificate required")) {
		snprintf(out, len, "TLS: the broker requires a client certificate%s [%s]",
			 link->cfg->cert_file ? "" : " (set cert_file and key_file)", t);
	} else if (strstr(t, "unknown ca") || strstr(t, "bad certificate")) {
		snprintf(out, len, "TLS: the broker rejected our client certificate [%s]", t);
	} else if (t[0]) {
		snprintf(out, len, "TLS: %s", t);
	} else if (rc == MOSQ_ERR_ERRNO && err) {
		snprintf(out, len, "%s", strerror(err));
	} else if (!link->got_connack && link->cfg->tls) {
		snprintf(out, len, "the broker closed the connection before accepting it (%s); it may "
			 "require a client certificate%s or reject ours",
			 mosquitto_strerror(rc), link->cfg->cert_file ? "" : " (cert_file/key_file not set)");
	} else {
		snprintf(out, len, "%s", mosquitto_strerror(rc));
	}
}

static void report_failure(struct mqtt_link *link, bool was_connected, const char *reason)
{
	if (was_connected)
		log_warn("mqtt: connection to %s lost: %s; reconnecting", link->cfg->broker, reason);
	else if (strcmp(reason, link->last_failure) != 0)
		log_error("mqtt: cannot connect to %s: %s (retrying with back-off)", link->cfg->broker,
			  reason);
	snprintf(link->last_failure, sizeof(link->last_failure), "%s", reason);
}

static void backoff_sleep(struct mqtt_link *link, int64_t ms)
{
	int64_t until = time_mono_ms() + ms;
	pthread_mutex_lock(&link->lock);
	while (!atomic_load(&link->stop)) {
		int64_t left = until - time_mono_ms();
		if (left <= 0)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(left / 1000);
		ts.tv_nsec += (long)(left % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&link->wake, &link->lock, &ts);
	}
	pthread_mutex_unlock(&link->lock);
}

static void *network_main(void *arg)
{
	struct mqtt_link *link = arg;
	const struct mqtt_config *cfg = link->cfg;
	int64_t backoff = BACKOFF_MIN_MS;
	bool first = true;

	while (!atomic_load(&link->stop)) {
		link->got_connack = false;
		link->refusal[0] = '\0';
		link->tls_error[0] = '\0';
		errno = 0;
		int rc = first ? mosquitto_connect_async(link->mosq, cfg->host, cfg->port, cfg->keepalive_s)
			       : mosquitto_reconnect_async(link->mosq);
		int err = errno;
		first = false;
		if (rc == MOSQ_ERR_SUCCESS) {
			do {
				rc = mosquitto_loop(link->mosq, 1000, 1);
			} while (rc == MOSQ_ERR_SUCCESS && !atomic_load(&link->stop));
			err = errno;
		}
		if (atomic_load(&link->stop))
			break;

		bool was_connected = atomic_exchange(&link->connected, false);
		if (was_connected && link->ev.disconnected)
			link->ev.disconnected(link->ctx);
		char reason[400];
		explain_failure(link, rc, err, reason, sizeof(reason));
		report_failure(link, was_connected, reason);
		/* A session that was up resets the back-off; repeated failures double it. */
		backoff = was_connected ? BACKOFF_MIN_MS : backoff;
		backoff_sleep(link, backoff);
		if (!was_connected)
			backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}

	if (atomic_exchange(&link->connected, false)) {
		mosquitto_disconnect(link->mosq);
		/* Let the DISCONNECT packet out before the socket closes. */
		for (int i = 0; i < 5 && mosquitto_want_write(link->mosq); i++)
			mosquitto_loop(link->mosq, 100, 1);
		if (link->ev.disconnected)
			link->ev.disconnected(link->ctx);
	}
	return NULL;
}

static int setup_tls(struct mqtt_link *link)
{
	const struct mqtt_config *cfg = link->cfg;
	const char *ca_file = cfg->ca_file, *ca_path = cfg->ca_path;
	if (!ca_file && !ca_path) {
		ca_path = SYSTEM_CA_PATH;
		mosquitto_int_option(link->mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
	}
	int rc = mosquitto_tls_set(link->mosq, ca_file, ca_path, cfg->cert_file, cfg->key_file,
				   no_passphrase);
	if (rc != MOSQ_ERR_SUCCESS) {
		log_error("mqtt: TLS set-up failed (ca_file %s, ca_path %s, cert_file %s, key_file %s): %s",
			  ca_file ? ca_file : "-", ca_path ? ca_path : "-",
			  cfg->cert_file ? cfg->cert_file : "-", cfg->key_file ? cfg->key_file : "-",
			  mosquitto_strerror(rc));
		return MB_ERR_TLS;
	}
	if (cfg->allow_all_certificates) {
		mosquitto_tls_opts_set(link->mosq, 0 /* SSL_VERIFY_NONE */, NULL, NULL);
		mosquitto_tls_insecure_set(link->mosq, true);
	} else {
		mosquitto_tls_opts_set(link->mosq, 1 /* SSL_VERIFY_PEER */, NULL, NULL);
		mosquitto_tls_insecure_set(link->mosq, false);
	}
	return 0;
}

int mqtt_link_new(const struct mqtt_config *cfg, const char *imei, const struct mqtt_events *ev,
		  void *ctx, struct mqtt_link **out)
{
	struct mqtt_link *link = calloc(1, sizeof(*link));
	if (!link)
		return MB_ERR_NOMEM;
	link->cfg = cfg;
	link->ev = *ev;
	link->ctx = ctx;
	pthread_mutex_init(&link->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&link->wake, &attr);
	pthread_condattr_destroy(&attr);

	if (cfg->client_id && cfg->client_id[0]) {
		link->client_id = config_subst_imei(cfg->client_id, imei);
		if (!link->client_id)
			goto nomem;
	}
	link->mosq = mosquitto_new(link->client_id, !cfg->persistence, link);
	if (!link->mosq)
		goto nomem;
	mosquitto_threaded_set(link->mosq, true);
	mosquitto_int_option(link->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	/* The forwarder bounds what is in flight; don't let the library queue behind it. */
	mosquitto_max_inflight_messages_set(link->mosq, 0);
	mosquitto_connect_callback_set(link->mosq, on_connect);
	mosquitto_publish_callback_set(link->mosq, on_publish);
	mosquitto_log_callback_set(link->mosq, on_log);
	if (cfg->username &&
	    mosquitto_username_pw_set(link->mosq, cfg->username, cfg->password) != MOSQ_ERR_SUCCESS)
		goto nomem;
	if (cfg->tls && setup_tls(link) != 0) {
		mqtt_link_free(link);
		return MB_ERR_TLS;
	}
	*out = link;
	return 0;
nomem:
	mqtt_link_free(link);
	return MB_ERR_NOMEM;
}

int mqtt_link_start(struct mqtt_link *link)
{
	if (pthread_create(&link->thread, NULL, network_main, link) != 0)
		return MB_ERR_NOMEM;
	link->started = true;
	return 0;
}

int mqtt_link_publish(struct mqtt_link *link, const char *topic, const void *payload, size_t len,
		      int qos, int *mid)
{
	if (!atomic_load(&link->connected))
		return MB_ERR_MQTT;
	int rc = mosquitto_publish(link->mosq, mid, topic, (int)len, payload, qos, false);
	if (rc != MOSQ_ERR_SUCCESS) {
		log_debug("mqtt: publish to %s failed: %s", topic, mosquitto_strerror(rc));
		return MB_ERR_MQTT;
	}
	return 0;
}

bool mqtt_link_connected(struct mqtt_link *link)
{
	return atomic_load(&link->connected);
}

void mqtt_link_stop(struct mqtt_link *link)
{
	if (!link || !link->started)
		return;
	pthread_mutex_lock(&link->lock);
	atomic_store(&link->stop, true);
	pthread_cond_signal(&link->wake);
	pthread_mutex_unlock(&link->lock);
	pthread_join(link->thread, NULL);
	link->started = false;
}

void mqtt_link_free(struct mqtt_link *link)
{
	if (!link)
		return;
	mqtt_link_stop(link);
	if (link->mosq)
		mosquitto_destroy(link->mosq);
	pthread_mutex_destroy(&link->lock);
	pthread_cond_destroy(&link->wake);
	free(link->client_id);
	free(link);
}
