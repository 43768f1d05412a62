/*
 * daemon.c - the running gateway; see daemon.h.
 *
 * Signals are blocked in every thread (the mask is set before any thread starts) and
 * taken synchronously with sigwait() on the main thread, so no work happens in a
 * signal handler and no thread is interrupted mid-transaction.
 */
#include "daemon.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "forward.h"
#include "ingest.h"
#include "log.h"
#include "message.h"
#include "mqtt.h"
#include "poller.h"
#include "store.h"

/* How long SIGTERM waits for messages in flight to be confirmed. */
#define SHUTDOWN_FLUSH_MS 3000

struct daemon_ctx {
	const struct config *cfg;
	struct store *store;
	struct ingest *ingest;
	struct forwarder *fw;
	struct message_context msg;
};

/* Runs on bus worker threads: encode, then hand over to the ingest (group commit). */
static void store_reading(void *arg, const struct reading *r)
{
	struct daemon_ctx *d = arg;
	if (r->error[0] && !d->cfg->logger.error_messages)
		return; /* the user turned ERR messages off; the failure itself was logged */
	char *json = message_encode(r, &d->msg);
	if (!json) {
		log_error("device %s: out of memory encoding a reading; reading lost", r->device->id);
		return;
	}
	log_debug("device %s: %s", r->device->id, json);
	ingest_push(d->ingest, r->ts_ms, r->device->id, json, strlen(json));
}

/* Runs on the ingest's writer thread after readings were committed. */
static void readings_committed(void *arg)
{
	struct daemon_ctx *d = arg;
	if (d->fw)
		forwarder_notify(d->fw);
}

int daemon_run(const struct config *cfg)
{
	struct daemon_ctx d = {
		.cfg = cfg,
		.msg = {.imei = cfg->imei, .logger_id = cfg->logger.id, .time_format = cfg->logger.time_format},
	};
	struct poller *poller = NULL;
	int rc;

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN); /* a broker closing the socket must not kill us */
	signal(SIGXFSZ, SIG_IGN); /* a file size limit must be an error (EFBIG), not death */

	log_info("modbridge %s starting (identity %s%s)", MODBRIDGE_VERSION, cfg->imei,
		 cfg->imei_configured ? "" : ", from the host name");
	rc = store_open(cfg->logger.store_path, &d.store);
	if (rc) {
		log_error("cannot open the store %s; not starting", cfg->logger.store_path);
		return rc;
	}
	struct store_limits limits = {
		.max_messages = cfg->logger.max_messages,
		.max_bytes = cfg->logger.max_bytes,
		.policy = cfg->logger.full_policy,
	};
	store_set_limits(d.store, &limits);
	mqtt_global_init();
	if (cfg->mqtt.enabled) {
		rc = forwarder_new(cfg, d.store, &d.fw);
		if (rc == 0)
			rc = forwarder_start(d.fw);
		if (rc) {
			log_error("cannot start the MQTT client: %s", mb_strerror(rc));
			goto out;
		}
	} else {
		log_warn("mqtt.enabled is false: readings are stored but not sent");
	}
	struct ingest_options io = {
		.memory_max_messages = (size_t)cfg->logger.memory_max_messages,
		.memory_max_bytes = (size_t)cfg->logger.memory_max_bytes,
		.policy = cfg->logger.full_policy,
		.committed = readings_committed,
		.ctx = &d,
	};
	rc = ingest_start(d.store, &io, &d.ingest);
	if (rc) {
		log_error("cannot start the store writer: %s", mb_strerror(rc));
		goto out;
	}
	rc = poller_start(cfg, store_reading, &d, &poller);
	if (rc) {
		log_error("cannot start polling: %s", mb_strerror(rc));
		goto out;
	}
	log_info("running: %zu device(s), store %s", cfg->device_count, cfg->logger.store_path);

	for (;;) {
		int sig = 0;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			log_warn("SIGHUP: configuration reload is not supported yet; restart to apply changes");
			continue;
		}
		log_info("signal %d (%s): stopping", sig, strsignal(sig));
		break;
	}

out:
	poller_stop(poller);
	ingest_stop(d.ingest, SHUTDOWN_FLUSH_MS); /* readings still in memory go to the store */
	forwarder_stop(d.fw, SHUTDOWN_FLUSH_MS);
	forwarder_free(d.fw);
	store_close(d.store);
	mqtt_global_cleanup();
	log_info("stopped");
	return rc;
}
