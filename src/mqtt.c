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
 * The subscription list and the message handler are set before the thread starts and
 * only read afterwards. `protocol` is changed only on the network thread (when the broker
 * refuses MQTT 5) and read atomically elsewhere.
 */
#include "mqtt.h"

#include <ctype.h>
#include <errno.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certinfo.h"
#include "config.h"
#include "error.h"
#include "liveness.h"
#include "log.h"
#include "timeutil.h"

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
/* A session lost sooner than this after it was accepted counts as a quick loss; several
 * in a row are what a client id shared with another client looks like under MQTT 3.1.1. */
#define QUICK_LOSS_MS 10000
#define QUICK_LOSSES_HINT 2
/* MQTT 5 DISCONNECT reason codes we explain (mqtt_protocol.h names them too). */
#define REASON_SERVER_SHUTTING_DOWN 0x8B
#define REASON_SESSION_TAKEN_OVER 0x8E
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
	pthread_mutex_t lock;  /* guards the back-off sleep and the two below */
	char last_error[400];  /* the last failure reported, for the status page */
	int64_t last_error_ms; /* its wall-clock time, 0: none */
	pthread_cond_t wake;

	/* Subscriptions, the message handler and the status topic: fixed before start. */
	struct subscription {
		char *filter;
		int qos;
		int mid; /* of the last SUBSCRIBE, to match the SUBACK (network thread) */
	} * subs;
	size_t sub_count;
	mqtt_message_fn on_message;
	void *message_ctx;
	char *status_topic;  /* NULL: no status topic */
	atomic_int protocol; /* MQTT_PROTOCOL_V5 or MQTT_PROTOCOL_V311 */

	/* Per connection attempt, written and read on the network thread only. */
	bool got_connack;
	char refusal[160];      /* CONNACK refusal text */
	char tls_error[200];    /* the last OpenSSL error the library logged */
	bool protocol_fallback; /* the broker refused MQTT 5: retry with 3.1.1 now */
	int server_reason;      /* MQTT 5 DISCONNECT reason code from the broker, 0: none */
	char last_failure[400];

	/* Across attempts (network thread only): what the history of this link tells. */
	bool accepted_before;    /* a session with these settings was accepted once */
	int64_t connected_at_ms; /* monotonic time of the last CONNACK */
	unsigned quick_losses;   /* sessions lost in a row within QUICK_LOSS_MS */
	int tls_probe;           /* plain broker port: -1 not probed, 0 not TLS, 1 TLS */

	/* TLS: our SSL_CTX for libmosquitto, which keeps why a certificate was refused. */
	void *ssl_ctx;
	struct certinfo_verify *verify;
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

/* The status topic's retained state; QoS 1 so it survives a broker's quick restart. */
static void publish_status(struct mqtt_link *link, const char *state)
{
	int rc = mosquitto_publish(link->mosq, NULL, link->status_topic, (int)strlen(state), state,
				   1, true);
	if (rc != MOSQ_ERR_SUCCESS)
		log_warn("mqtt: cannot publish '%s' on the status topic %s: %s", state,
			 link->status_topic, mosquitto_strerror(rc));
}

static void subscribe_all(struct mqtt_link *link)
{
	bool v5 = atomic_load(&link->protocol) == MQTT_PROTOCOL_V5;
	for (size_t i = 0; i < link->sub_count; i++) {
		struct subscription *sub = &link->subs[i];
		/* No local: under MQTT 5 our own replies never come back as commands. */
		int rc = mosquitto_subscribe_v5(link->mosq, &sub->mid, sub->filter, sub->qos,
						v5 ? MQTT_SUB_OPT_NO_LOCAL : 0, NULL);
		if (rc != MOSQ_ERR_SUCCESS)
			log_error("mqtt: cannot subscribe to '%s': %s", sub->filter,
				  mosquitto_strerror(rc));
	}
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count,
			 const int *granted)
{
	struct mqtt_link *link = obj;
	(void)mosq;
	for (size_t i = 0; i < link->sub_count; i++) {
		if (link->subs[i].mid != mid)
			continue;
		/* 0x80 (MQTT 3.1.1) or a reason code >= 0x80 (MQTT 5) is a refusal. */
		if (qos_count < 1 || granted[0] >= 0x80)
			log_error("mqtt: the broker refused the subscription to '%s' (reason %d); "
				  "commands on it will not arrive",
				  link->subs[i].filter, qos_count < 1 ? -1 : granted[0]);
		else
			log_info("mqtt: subscribed to '%s'", link->subs[i].filter);
		return;
	}
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *m,
		       const mosquitto_property *props)
{
	struct mqtt_link *link = obj;
	char *response_topic = NULL;
	void *correlation = NULL;
	uint16_t correlation_len = 0;
	(void)mosq;
	if (!link->on_message)
		return;
	mosquitto_property_read_string(props, MQTT_PROP_RESPONSE_TOPIC, &response_topic, false);
	mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &correlation,
				       &correlation_len, false);
	struct mqtt_message msg = {
		.topic = m->topic,
		.payload = m->payload,
		.len = m->payloadlen > 0 ? (size_t)m->payloadlen : 0,
		.response_topic = response_topic,
		.correlation = correlation,
		.correlation_len = correlation ? correlation_len : 0,
	};
	link->on_message(link->message_ctx, &msg);
	free(response_topic);
	free(correlation);
}

/* A CONNACK refusal in words: MQTT 5 reason codes and 3.1.1 return codes differ. */
static void refusal_text(struct mqtt_link *link, int rc, char *out, size_t len)
{
	if (atomic_load(&link->protocol) == MQTT_PROTOCOL_V5) {
		char reason[96];
		snprintf(reason, sizeof(reason), "%s", mosquitto_reason_string(rc));
		reason[0] = (char)tolower((unsigned char)reason[0]);
		snprintf(out, len, "broker refused the connection: %s (reason code %d)", reason,
			 rc);
	} else {
		snprintf(out, len, "broker refused the connection: %s",
			 mosquitto_connack_string(rc));
	}
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
	struct mqtt_link *link = obj;
	(void)mosq;
	link->got_connack = true;
	if (rc == MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION &&
	    atomic_load(&link->protocol) == MQTT_PROTOCOL_V5) {
		/* An MQTT 3.1.1 broker: the next attempt speaks its protocol. */
		atomic_store(&link->protocol, MQTT_PROTOCOL_V311);
		mosquitto_int_option(link->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
		link->protocol_fallback = true;
		log_warn("mqtt: %s does not support MQTT 5; connecting with MQTT 3.1.1 (MQTT 5 "
			 "response topics and correlation data are then not available)",
			 link->cfg->broker);
		return;
	}
	if (rc != 0) {
		refusal_text(link, rc, link->refusal, sizeof(link->refusal));
		return;
	}
	atomic_store(&link->connected, true);
	link->accepted_before = true;
	link->connected_at_ms = time_mono_ms();
	link->tls_probe = -1;
	/* While sessions keep being lost at once for the same reason, that was said once. */
	if (link->quick_losses < 2)
		link->last_failure[0] = '\0';
	log_msg(link->quick_losses >= 2 ? LOG_LVL_DEBUG : LOG_LVL_INFO,
		"mqtt: connected to %s as client id '%s' (MQTT %s)", link->cfg->broker,
		link->client_id ? link->client_id : "(random)",
		atomic_load(&link->protocol) == MQTT_PROTOCOL_V5 ? "5" : "3.1.1");
	if (link->status_topic)
		publish_status(link, "online");
	subscribe_all(link);
	if (link->cfg->tls && link->cfg->allow_all_certificates)
		log_warn("mqtt: INSECURE: allow_all_certificates is on; the broker's certificate "
			 "and host name were NOT verified. Anyone on the path can read and forge "
			 "this connection.");
	if (link->ev.connected)
		link->ev.connected(link->ctx);
}

/* rc is a reason code (>= 0x80) when the broker sent an MQTT 5 DISCONNECT, else a
 * libmosquitto error code (< 0x80) for a lost socket or 0 for our own disconnect. */
static void on_disconnect(struct mosquitto *mosq, void *obj, int rc,
			  const mosquitto_property *props)
{
	struct mqtt_link *link = obj;
	(void)mosq;
	(void)props;
	log_debug("mqtt: disconnected (%d)", rc);
	if (rc >= 0x80)
		link->server_reason = rc;
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

/* A DISCONNECT from an MQTT 5 broker, in words. */
static void server_disconnect_text(struct mqtt_link *link, char *out, size_t len)
{
	int r = link->server_reason;
	if (r == REASON_SESSION_TAKEN_OVER) {
		snprintf(out, len,
			 "the broker handed our session to another client that connected with our "
			 "client id '%s' (MQTT 5 reason 0x8E, session taken over); every gateway "
			 "and tool needs its own client id",
			 link->client_id ? link->client_id : "");
	} else if (r == REASON_SERVER_SHUTTING_DOWN) {
		snprintf(out, len, "the broker is shutting down (MQTT 5 reason 0x8B)");
	} else {
		char reason[96];
		snprintf(reason, sizeof(reason), "%s", mosquitto_reason_string(r));
		reason[0] = (char)tolower((unsigned char)reason[0]);
		snprintf(out, len, "the broker disconnected us: %s (MQTT 5 reason 0x%02X)", reason,
			 (unsigned)r);
	}
}

/*
 * A plain-TCP broker port that drops the connection before any CONNACK: is it a TLS port?
 * Asked once per episode (a probe is one more connection), answered by a TLS handshake.
 */
static bool plain_port_speaks_tls(struct mqtt_link *link)
{
	if (link->tls_probe < 0)
		link->tls_probe = certinfo_probe_tls(link->cfg->host, link->cfg->port, 3000);
	return link->tls_probe == 1;
}

/* Turns what we saw during a failed attempt into one sentence a user can act on. */
static void explain_failure(struct mqtt_link *link, int rc, int err, char *out, size_t len)
{
	const struct mqtt_config *cfg = link->cfg;
	const char *t = link->tls_error;
	/* The peer hung up before any CONNACK: a TLS peer may do it without close_notify. */
	bool closed_early =
		!link->got_connack && !link->refusal[0] && (!t[0] || strstr(t, "unexpected eof")) &&
		(rc == MOSQ_ERR_CONN_LOST || rc == MOSQ_ERR_PROTOCOL || rc == MOSQ_ERR_NO_CONN ||
		 rc == MOSQ_ERR_TLS ||
		 (rc == MOSQ_ERR_ERRNO && (err == ECONNRESET || err == EPIPE || err == EPROTO)));
	if (link->refusal[0]) {
		snprintf(out, len, "%s", link->refusal);
	} else if (link->server_reason) {
		server_disconnect_text(link, out, len);
	} else if (strstr(t, "certificate verify failed") && link->verify &&
		   certinfo_verify_failure(link->verify)) {
		/* OpenSSL's own verification result: expired, wrong host or wrong CA. */
		snprintf(out, len, "TLS: %s", certinfo_verify_failure(link->verify));
		log_debug("mqtt: %s", t);
	} else if (strstr(t, "certificate verify failed")) {
		snprintf(out, len,
			 "TLS: the broker's certificate could not be verified (untrusted CA, "
			 "expired, or it does not match the host name '%s'); check ca_file [%s]",
			 cfg->host, t);
	} else if (strstr(t, "certificate required")) {
		snprintf(out, len, "TLS: the broker requires a client certificate%s [%s]",
			 cfg->cert_file ? "" : " (set cert_file and key_file)", t);
	} else if (strstr(t, "unknown ca") || strstr(t, "bad certificate")) {
		snprintf(out, len, "TLS: the broker rejected our client certificate [%s]", t);
	} else if (closed_early && link->accepted_before) {
		/* The same settings worked before: a broker that is (re)starting or overloaded
		 * drops connections like this; our certificate is not the cause. */
		snprintf(out, len,
			 "the broker closed the connection before accepting it (%s); it accepted "
			 "this client with the same settings before, so it is probably restarting "
			 "or overloaded",
			 rc == MOSQ_ERR_ERRNO ? strerror(err) : mosquitto_strerror(rc));
	} else if (t[0]) {
		snprintf(out, len, "TLS: %s", t);
	} else if (closed_early && !cfg->tls && plain_port_speaks_tls(link)) {
		snprintf(out, len,
			 "the broker closed the connection before accepting it: port %d speaks TLS, "
			 "so the broker URL must be ssl://%s:%d (tcp:// and mqtt:// are plain TCP)",
			 cfg->port, cfg->host, cfg->port);
	} else if (closed_early && !cfg->tls) {
		snprintf(out, len,
			 "the broker closed the connection before accepting it (%s); is port %d an "
			 "MQTT port?",
			 rc == MOSQ_ERR_ERRNO ? strerror(err) : mosquitto_strerror(rc), cfg->port);
	} else if (rc == MOSQ_ERR_ERRNO && err) {
		snprintf(out, len, "%s", strerror(err));
	} else if (!link->got_connack && cfg->tls) {
		snprintf(out, len,
			 "the broker closed the connection before accepting it (%s); it may "
			 "require a client certificate%s or reject ours",
			 mosquitto_strerror(rc),
			 cfg->cert_file ? "" : " (cert_file/key_file not set)");
	} else {
		snprintf(out, len, "%s", mosquitto_strerror(rc));
	}
	/* MQTT 3.1.1 brokers close the older of two connections with one client id without a
	 * word; sessions that keep dying right after being accepted are the sign of it. */
	if (link->got_connack && link->quick_losses >= QUICK_LOSSES_HINT && !link->server_reason &&
	    link->client_id) {
		size_t used = strlen(out);
		snprintf(out + used, len - used,
			 "; sessions keep being lost right after the broker accepts them: is "
			 "another client connecting with our client id '%s'?",
			 link->client_id);
	}
}

/*
 * Logs a failure once per change of reason. A lost session is a change each time, unless
 * sessions keep being lost at once for the same reason (two clients fighting over one
 * client id): then it was said, and the repeats go to the debug level.
 */
static void report_failure(struct mqtt_link *link, bool was_connected, const char *reason)
{
	bool same = strcmp(reason, link->last_failure) == 0;
	if (was_connected && link->quick_losses >= 2 && same)
		log_debug("mqtt: connection to %s lost again: %s", link->cfg->broker, reason);
	else if (was_connected)
		log_warn("mqtt: connection to %s lost: %s; reconnecting%s", link->cfg->broker,
			 reason,
			 link->quick_losses >= 2 ? " (repeats are logged at debug level until a "
						   "session lasts)"
						 : "");
	else if (!same)
		log_error("mqtt: cannot connect to %s: %s (retrying with back-off)",
			  link->cfg->broker, reason);
	snprintf(link->last_failure, sizeof(link->last_failure), "%s", reason);
	pthread_mutex_lock(&link->lock);
	snprintf(link->last_error, sizeof(link->last_error), "%s%s",
		 was_connected ? "connection lost: " : "cannot connect: ", reason);
	link->last_error_ms = time_now_ms();
	pthread_mutex_unlock(&link->lock);
}

int64_t mqtt_link_last_error(struct mqtt_link *link, char *buf, size_t len)
{
	int64_t when;

	pthread_mutex_lock(&link->lock);
	snprintf(buf, len, "%s", link->last_error);
	when = link->last_error_ms;
	pthread_mutex_unlock(&link->lock);
	return when;
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
		time_mono_deadline(left, &ts);
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

	thread_set_name("mb-mqtt");

	while (!atomic_load(&link->stop)) {
		link->got_connack = false;
		link->refusal[0] = '\0';
		link->tls_error[0] = '\0';
		link->server_reason = 0;
		if (link->verify)
			certinfo_verify_reset(link->verify);
		errno = 0;
		int rc = first ? mosquitto_connect_async(link->mosq, cfg->host, cfg->port,
							 cfg->keepalive_s)
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
		if (link->protocol_fallback) {
			link->protocol_fallback = false;
			continue; /* at once, with MQTT 3.1.1: not a failure to report */
		}
		if (was_connected) {
			bool quick = time_mono_ms() - link->connected_at_ms < QUICK_LOSS_MS;
			link->quick_losses = quick ? link->quick_losses + 1 : 0;
		}
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
		/* A clean DISCONNECT makes the broker drop the will: say "offline" ourselves. */
		if (link->status_topic)
			publish_status(link, "offline");
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
	/* Our SSL_CTX, with libmosquitto's settings applied to it, so that the reason for a
	 * refused broker certificate can be logged (certinfo.h). */
	char ca_desc[600];
	if (cfg->ca_file && cfg->ca_path)
		snprintf(ca_desc, sizeof(ca_desc), "ca_file '%s' or ca_path '%s'", cfg->ca_file,
			 cfg->ca_path);
	else if (cfg->ca_file || cfg->ca_path)
		snprintf(ca_desc, sizeof(ca_desc), "%s '%s'", cfg->ca_file ? "ca_file" : "ca_path",
			 cfg->ca_file ? cfg->ca_file : cfg->ca_path);
	else
		snprintf(ca_desc, sizeof(ca_desc),
			 "the system CA store (" SYSTEM_CA_PATH "; set ca_file for a private CA)");
	if (certinfo_client_ctx_new(cfg->host, ca_desc, &link->ssl_ctx, &link->verify) != 0)
		return MB_ERR_NOMEM;
	if (mosquitto_void_option(link->mosq, MOSQ_OPT_SSL_CTX, link->ssl_ctx) !=
		    MOSQ_ERR_SUCCESS ||
	    mosquitto_int_option(link->mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 1) != MOSQ_ERR_SUCCESS)
		log_debug("mqtt: libmosquitto does not take our SSL_CTX; certificate failures are "
			  "reported less precisely");
	int rc = mosquitto_tls_set(link->mosq, ca_file, ca_path, cfg->cert_file, cfg->key_file,
				   no_passphrase);
	if (rc != MOSQ_ERR_SUCCESS) {
		log_error("mqtt: TLS set-up failed (ca_file %s, ca_path %s, cert_file %s, key_file %s): %s",
			  ca_file ? ca_file : "-", ca_path ? ca_path : "-",
			  cfg->cert_file ? cfg->cert_file : "-",
			  cfg->key_file ? cfg->key_file : "-", mosquitto_strerror(rc));
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
	link->tls_probe = -1;
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
	atomic_store(&link->protocol, cfg->persistence ? MQTT_PROTOCOL_V311 : MQTT_PROTOCOL_V5);
	mosquitto_int_option(link->mosq, MOSQ_OPT_PROTOCOL_VERSION, atomic_load(&link->protocol));
	if (cfg->status_topic) {
		link->status_topic = config_subst_imei(cfg->status_topic, imei);
		if (!link->status_topic)
			goto nomem;
		/* Retained, so a dashboard that subscribes later still sees the state. */
		if (mosquitto_will_set(link->mosq, link->status_topic, 7, "offline", 1, true) !=
		    MOSQ_ERR_SUCCESS) {
			log_error("mqtt: cannot use '%s' as the status topic", link->status_topic);
			mqtt_link_free(link);
			return MB_ERR_CONFIG;
		}
	}
	/* The forwarder bounds what is in flight; don't let the library queue behind it. */
	mosquitto_max_inflight_messages_set(link->mosq, 0);
	mosquitto_connect_callback_set(link->mosq, on_connect);
	mosquitto_disconnect_v5_callback_set(link->mosq, on_disconnect);
	mosquitto_publish_callback_set(link->mosq, on_publish);
	mosquitto_subscribe_callback_set(link->mosq, on_subscribe);
	mosquitto_message_v5_callback_set(link->mosq, on_message);
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
	return mqtt_link_publish_ex(link, topic, payload, len, qos, false, mid);
}

int mqtt_link_publish_ex(struct mqtt_link *link, const char *topic, const void *payload, size_t len,
			 int qos, bool retain, int *mid)
{
	if (!atomic_load(&link->connected))
		return MB_ERR_MQTT;
	int rc = mosquitto_publish(link->mosq, mid, topic, (int)len, payload, qos, retain);
	if (rc != MOSQ_ERR_SUCCESS) {
		log_debug("mqtt: publish to %s failed: %s", topic, mosquitto_strerror(rc));
		return MB_ERR_MQTT;
	}
	return 0;
}

int mqtt_link_subscribe(struct mqtt_link *link, const char *filter, int qos)
{
	struct subscription *grown = realloc(link->subs, (link->sub_count + 1) * sizeof(*grown));
	if (!grown)
		return MB_ERR_NOMEM;
	link->subs = grown;
	char *copy = strdup(filter);
	if (!copy)
		return MB_ERR_NOMEM;
	link->subs[link->sub_count++] =
		(struct subscription){.filter = copy, .qos = qos, .mid = -1};
	return 0;
}

void mqtt_link_on_message(struct mqtt_link *link, mqtt_message_fn fn, void *ctx)
{
	link->on_message = fn;
	link->message_ctx = ctx;
}

int mqtt_link_publish_reply(struct mqtt_link *link, const char *topic, const void *payload,
			    size_t len, int qos, const void *correlation, size_t correlation_len,
			    int *mid)
{
	mosquitto_property *props = NULL;
	int rc;

	if (!atomic_load(&link->connected))
		return MB_ERR_MQTT;
	if (correlation && correlation_len <= UINT16_MAX &&
	    atomic_load(&link->protocol) == MQTT_PROTOCOL_V5 &&
	    mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, correlation,
					  (uint16_t)correlation_len) != MOSQ_ERR_SUCCESS)
		return MB_ERR_NOMEM;
	rc = mosquitto_publish_v5(link->mosq, mid, topic, (int)len, payload, qos, false, props);
	mosquitto_property_free_all(&props);
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
	certinfo_client_ctx_free(link->ssl_ctx, link->verify);
	pthread_mutex_destroy(&link->lock);
	pthread_cond_destroy(&link->wake);
	for (size_t i = 0; i < link->sub_count; i++)
		free(link->subs[i].filter);
	free(link->subs);
	free(link->status_topic);
	free(link->client_id);
	free(link);
}
