/*
 * daemon.c - the running gateway; see daemon.h.
 *
 * Signals are blocked in every thread (the mask is set before any thread starts) and
 * taken synchronously with sigwait() on the main thread, so no work happens in a
 * signal handler and no thread is interrupted mid-transaction.
 *
 * Restart (SIGHUP, or the REBOOT and SETPARAM remote commands): the configuration file is
 * loaded again and checked first; when it is valid, every part is stopped as for SIGTERM
 * (readings in flight stay in the store), and started again with it. The store file is
 * kept, so nothing is lost. If the new configuration cannot start, the previous one is
 * started again. A remote command asks for the restart by setting `restart_requested`
 * and sending SIGUSR1 to the main thread, which is waiting in sigwait().
 *
 * Send modes (logger.mode): the readings go through one uplink (MQTT, HTTP or FTP); the
 * MQTT link runs whenever mqtt is enabled, whatever the mode, for the AT commands and the
 * status topic.
 *
 * One daemon per store: daemon_run locks the store (lockfile.h) before the first start and
 * holds the lock across restarts, so no second daemon can slip in while the store is
 * closed. A restart with another logger.store locks the new store first; the old lock is
 * released only once the new configuration has started (if it cannot start, the previous
 * configuration runs again on the store it still holds).
 */
#include "daemon.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "error.h"
#include "forward.h"
#include "ingest.h"
#include "lockfile.h"
#include "log.h"
#include "message.h"
#include "modem.h"
#include "mqtt.h"
#include "poller.h"
#include "remote.h"
#include "store.h"
#include "curlx.h"
#include "timeutil.h"
#include "uplink_ftp.h"
#include "uplink_http.h"
#include "uplink_mqtt.h"
#include "uplink_stats.h"
#include "web.h"

/* How long SIGTERM waits for messages in flight to be confirmed. */
#define SHUTDOWN_FLUSH_MS 3000

struct daemon_ctx {
	const struct config *cfg;
	struct store *store;
	struct ingest *ingest;
	struct uplink *up;   /* where readings go (logger.mode); NULL: nowhere */
	struct uplink *mqtt; /* the MQTT link (AT commands, status topic); NULL when off */
	struct uplink_stats *stats;
	struct forwarder *fw;
	struct message_context msg;
	struct modem *modem;
	struct remote *remote;
	struct web *web; /* the web UI, kept across restarts (NULL: off) */
};

static pthread_t main_thread;
static atomic_bool restart_requested;
static int64_t started_ms; /* when daemon_run began, for the web UI's uptime */

/* Runs on the remote command worker: wake the main thread, which does the restart. */
static void request_restart(void *ctx)
{
	(void)ctx;
	atomic_store(&restart_requested, true);
	pthread_kill(main_thread, SIGUSR1);
}

/* With a modem and no gateway.imei, the modem's IMEI is the identity. */
static void identity_from_modem(struct config *cfg, struct modem *modem)
{
	char imei[24], why[256];

	if (!modem || cfg->imei_configured)
		return;
	if (modem_read_imei(modem, imei, sizeof(imei), why, sizeof(why)) != 0) {
		log_warn("cannot read the IMEI from the modem %s: %s; using '%s' as the identity",
			 modem_device(modem), why, cfg->imei);
		return;
	}
	if (config_set_imei(cfg, imei) == 0)
		log_info("identity %s read from the modem %s", imei, modem_device(modem));
}

/* Loads the file again for a restart; NULL (the problems logged) when it is not valid. */
static struct config *reload(const char *path)
{
	struct config_diags diags = {0};
	struct config *next = NULL;
	int rc = config_load(path, &next, &diags);

	for (size_t i = 0; i < diags.count; i++) {
		if (diags.items[i].severity == CONFIG_ERROR)
			log_error("%s", diags.items[i].text);
		else
			log_warn("%s", diags.items[i].text);
	}
	config_diags_free(&diags);
	if (rc != 0) {
		log_error("%s: %s; not restarting, the running configuration stays", path,
			  mb_strerror(rc));
		return NULL;
	}
	return next;
}

/* Runs on bus worker threads: encode, then hand over to the ingest (group commit). */
static void store_reading(void *arg, const struct reading *r)
{
	struct daemon_ctx *d = arg;
	if (r->error[0] && !d->cfg->logger.error_messages)
		return; /* the user turned ERR messages off; the failure itself was logged */
	char *json = message_encode(r, &d->msg);
	if (!json) {
		log_error("device %s: out of memory encoding a reading; reading lost",
			  r->device->id);
		return;
	}
	log_debug("device %s: %s", r->device->id, json);
	web_note_reading(d->web, r->device->id, r->ts_ms, json, r->error[0] != 0);
	ingest_push(d->ingest, r->ts_ms, r->device->id, json, strlen(json));
}

/* Runs on the ingest's writer thread (readings committed, or waiting in memory while the
 * store fails) or on a bus worker. d->fw is set before the ingest starts. */
static void readings_ready(void *arg)
{
	struct daemon_ctx *d = arg;
	if (d->fw)
		forwarder_notify(d->fw);
}

static const char *const mode_names[] = {"mqtt", "http", "ftp"};

static void free_uplinks(struct daemon_ctx *d)
{
	if (d->up && d->up != d->mqtt) {
		if (d->cfg->logger.mode == LOGGER_HTTP)
			uplink_http_free(d->up);
		else
			uplink_ftp_free(d->up);
	}
	uplink_mqtt_free(d->mqtt);
	uplink_stats_free(d->stats);
	d->up = d->mqtt = NULL;
	d->stats = NULL;
}

/* The forwarder's options for the mode (docs/logger.md, "Send modes"). */
static struct forward_options forward_options_of(const struct config *cfg,
						 struct uplink_stats *stats)
{
	struct forward_options fo = {
		.window = cfg->logger.inflight_window,
		.send_mode = cfg->logger.send_mode,
		.array = cfg->logger.array,
		.array_max_count = cfg->logger.array_max_count,
		.array_max_bytes = cfg->logger.array_max_bytes,
		.stats = stats,
	};
	if (cfg->logger.mode == LOGGER_HTTP && cfg->http.method == HTTP_GET)
		fo.array = false; /* the router's real-time GET: one reading per request */
	/* A file holds up to max_readings readings, all in flight until it is on the
	 * server; room for two files lets the next one fill while one uploads. */
	if (cfg->logger.mode == LOGGER_FTP && fo.window < 2 * cfg->ftp.max_readings)
		fo.window = 2 * cfg->ftp.max_readings;
	return fo;
}

/*
 * Creates and starts the uplinks: the one for the readings (logger.mode) with its
 * forwarder, and the MQTT link whenever mqtt is enabled (in http and ftp mode it carries
 * only the AT commands and the status topic). Errors are logged.
 */
static int start_uplinks(struct daemon_ctx *d)
{
	static const struct remote_hooks hooks = {.restart = request_restart};
	const struct config *cfg = d->cfg;
	enum logger_mode mode = cfg->logger.mode;
	char *status_path = uplink_status_path(cfg->logger.store_path);
	const char *target = mode == LOGGER_HTTP  ? cfg->http.url
			     : mode == LOGGER_FTP ? cfg->ftp.url
			     : cfg->mqtt.enabled  ? cfg->mqtt.broker
						  : "nowhere (mqtt.enabled is false)";
	int rc = status_path ? uplink_stats_new(mode_names[mode], target, status_path, &d->stats)
			     : MB_ERR_NOMEM;
	free(status_path);
	if (rc == 0 && cfg->mqtt.enabled)
		rc = uplink_mqtt_new(cfg, &d->mqtt);
	if (rc == 0 && mode == LOGGER_MQTT && d->mqtt) {
		d->up = d->mqtt;
		uplink_mqtt_set_stats(d->mqtt, d->stats);
	} else if (rc == 0 && mode == LOGGER_HTTP)
		rc = uplink_http_new(cfg, d->stats, &d->up);
	else if (rc == 0 && mode == LOGGER_FTP)
		rc = uplink_ftp_new(cfg, cfg->logger.array, d->stats, &d->up);
	if (rc == 0 && d->up) {
		struct forward_options fo = forward_options_of(cfg, d->stats);
		struct forward_queue fq = forward_queue_of(d->store);
		rc = forwarder_new(&fo, &fq, d->ingest, d->up, &d->fw);
	}
	/* The remote commands share the MQTT connection; they subscribe first. */
	if (rc == 0 && d->mqtt && cfg->mqtt.at_topic_count)
		rc = remote_new(cfg, uplink_mqtt_link(d->mqtt), d->store, d->modem, &hooks,
				&d->remote);
	if (rc == 0 && d->fw)
		rc = forwarder_start(d->fw);
	if (rc == 0 && d->up)
		rc = d->up->ops->start(d->up->impl);
	if (rc) {
		log_error("cannot start the %s uplink: %s", mode_names[mode], mb_strerror(rc));
		return rc;
	}
	if (d->mqtt && d->mqtt != d->up && (rc = d->mqtt->ops->start(d->mqtt->impl)) != 0) {
		log_error("cannot start the MQTT client: %s", mb_strerror(rc));
		return rc;
	}
	if (!d->up)
		log_warn("mqtt.enabled is false: readings are stored but not sent");
	if (!cfg->mqtt.enabled && cfg->mqtt.at_topic_count)
		log_warn("mqtt.enabled is false: the AT topics are not subscribed");
	return 0;
}

/*
 * Makes *lock the lock of path's store (see the opening comment). When that takes a new
 * lock, the one held so far moves to *old, for run_once to release once started.
 * Returns 0, or an error (logged) with *lock unchanged.
 */
static int lock_store(const char *path, struct lockfile **lock, struct lockfile **old)
{
	struct lockfile *fresh = NULL;
	char why[1024];
	int err = 0, rc;

	if (*lock && lockfile_covers(*lock, path))
		return 0;
	rc = store_make_parent_dirs(path);
	if (rc == 0 && (rc = lockfile_acquire(path, &fresh, why, sizeof(why), &err)) != 0) {
		const char *hint = store_os_hint(err);
		log_error("%s%s%s", why, hint ? "; " : "", hint ? hint : "");
	}
	if (rc) {
		log_error("cannot open the store %s; not starting", path);
		return rc;
	}
	log_debug("store %s: locked (%s)", path, lockfile_path(fresh));
	*old = *lock;
	*lock = fresh;
	return 0;
}

/*
 * Starts every part with cfg, waits for a signal, stops everything. Returns 0 after a stop
 * (*next set to a new, valid configuration when it was a restart), or a negative mb_error
 * when start-up failed. Once started, it releases *old_lock (the previous store's lock).
 */
static int run_once(struct config *cfg, const sigset_t *set, struct config **next,
		    struct lockfile **old_lock, struct web **web)
{
	struct daemon_ctx d = {.cfg = cfg};
	struct poller *poller = NULL;
	int rc;

	*next = NULL;
	/* The web UI's Log screen: recent lines from here on (costs nothing without it). */
	if (cfg->web.enabled && log_ring_enable((size_t)256 * 1024) != 0)
		log_warn("web: no memory for the log screen's ring");
	if (cfg->modem.device) {
		rc = modem_new(&cfg->modem, &d.modem);
		if (rc)
			return rc;
		identity_from_modem(cfg, d.modem);
	}
	d.msg = (struct message_context){
		.imei = cfg->imei,
		.logger_id = cfg->logger.id,
		.time_format = cfg->logger.time_format,
	};

	log_info("modbridge %s starting (identity %s%s)", MODBRIDGE_VERSION, cfg->imei,
		 cfg->imei_configured ? ""
		 : d.modem            ? ", from the modem or the host name"
				      : ", from the host name");
	rc = store_open(cfg->logger.store_path, &d.store);
	if (rc) {
		log_error("cannot open the store %s; not starting", cfg->logger.store_path);
		modem_free(d.modem);
		return rc;
	}
	struct store_limits limits = {
		.max_messages = cfg->logger.max_messages,
		.max_bytes = cfg->logger.max_bytes,
		.policy = cfg->logger.full_policy,
	};
	store_set_limits(d.store, &limits);
	mqtt_global_init();
	if (curlx_global_init() != 0) {
		rc = MB_ERR_NOMEM;
		log_error("cannot initialise libcurl");
		goto out;
	}
	struct ingest_store ist = ingest_store_of(d.store);
	struct ingest_options io = {
		.memory_max_messages = (size_t)cfg->logger.memory_max_messages,
		.memory_max_bytes = (size_t)cfg->logger.memory_max_bytes,
		.policy = cfg->logger.full_policy,
		.notify = readings_ready,
		.ctx = &d,
	};
	rc = ingest_new(&ist, &io, &d.ingest);
	if (rc) {
		log_error("cannot start the store writer: %s", mb_strerror(rc));
		goto out;
	}
	rc = start_uplinks(&d);
	if (rc)
		goto out;
	rc = ingest_start(d.ingest);
	if (rc) {
		log_error("cannot start the store writer: %s", mb_strerror(rc));
		goto out;
	}
	/* The web UI sees readings from the first poll on: made before the poller starts. */
	if (cfg->web.enabled && !*web && (rc = web_new(web)) != 0) {
		log_error("cannot start the web UI: %s", mb_strerror(rc));
		goto out;
	}
	if (!cfg->web.enabled && *web) {
		web_free(*web);
		*web = NULL;
		log_info("web: the web UI is off now (web.enabled is false)");
	}
	d.web = *web;
	rc = poller_start(cfg, store_reading, &d, &poller);
	if (rc) {
		log_error("cannot start polling: %s", mb_strerror(rc));
		goto out;
	}
	if (d.remote && (rc = remote_start(d.remote, poller)) != 0) {
		log_error("cannot start the remote commands: %s", mb_strerror(rc));
		goto out;
	}
	if (d.web) {
		struct web_env env = {
			.cfg = cfg,
			.poller = poller,
			.store = d.store,
			.modem = d.modem,
			.link = d.mqtt ? uplink_mqtt_link(d.mqtt) : NULL,
			.restart = request_restart,
			.started_ms = started_ms,
		};
		rc = web_attach(d.web, &env);
		if (rc) {
			log_error("cannot start the web UI: %s", mb_strerror(rc));
			goto out;
		}
	}
	log_info("running: %zu device(s), store %s", cfg->device_count, cfg->logger.store_path);
	if (*old_lock) {
		log_info("released the lock of the previous store (%s)", lockfile_path(*old_lock));
		lockfile_release(*old_lock);
		*old_lock = NULL;
	}

	for (;;) {
		int sig = 0;
		if (sigwait(set, &sig) != 0)
			continue;
		if (sig == SIGUSR1 && !atomic_exchange(&restart_requested, false))
			continue; /* not ours */
		if (sig == SIGHUP || sig == SIGUSR1) {
			log_info("%s: reloading %s", sig == SIGHUP ? "SIGHUP" : "remote command",
				 cfg->path);
			*next = reload(cfg->path);
			if (!*next)
				continue;
			log_info("restarting with the configuration from %s", cfg->path);
			break;
		}
		log_info("signal %d (%s): stopping", sig, strsignal(sig));
		break;
	}

out:
	/*
	 * Remote first (no new command), then the buses (a command waiting for one returns, and
	 * no reading arrives any more). The forwarder then stops sending from the store but
	 * goes on sending readings that only exist in memory (the store was not writable), and
	 * waits for what is in flight; then the uplink disconnects, and the ingest makes a last
	 * attempt to store what is left. The remote worker is joined while the link exists.
	 * The web UI goes first of all: it gives the parts back once its requests are done
	 * (a save's request has answered before the restart it asked for).
	 */
	web_detach(d.web);
	remote_stop(d.remote);
	poller_stop(poller);
	/* An FTP file is confirmed only once it is whole on the server: waiting for the open
	 * one would hold every stop for the full flush. Its readings stay in the store, and a
	 * file cut short is sent again under the same name (uplink_ftp.h). */
	forwarder_stop(d.fw, cfg->logger.mode == LOGGER_FTP ? 0 : SHUTDOWN_FLUSH_MS);
	if (d.up)
		d.up->ops->stop(d.up->impl);
	if (d.mqtt && d.mqtt != d.up)
		d.mqtt->ops->stop(d.mqtt->impl);
	ingest_stop(d.ingest, SHUTDOWN_FLUSH_MS);
	remote_free(d.remote);
	forwarder_free(d.fw);
	free_uplinks(&d);
	modem_free(d.modem);
	store_close(d.store);
	curlx_global_cleanup();
	mqtt_global_cleanup();
	log_info(*next ? "stopped for a restart" : "stopped");
	return rc;
}

int daemon_run(struct config *cfg)
{
	struct config *current = cfg, *previous = NULL;
	struct lockfile *lock = NULL, *old_lock = NULL;
	int rc;

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN); /* a broker closing the socket must not kill us */
	signal(SIGXFSZ, SIG_IGN); /* a file size limit must be an error (EFBIG), not death */
	main_thread = pthread_self();
	started_ms = time_now_ms();
	struct web *web = NULL;

	for (;;) {
		struct config *next = NULL;
		atomic_store(&restart_requested, false);
		rc = lock_store(current->logger.store_path, &lock, &old_lock);
		if (rc == 0)
			rc = run_once(current, &set, &next, &old_lock, &web);
		if (old_lock) { /* not started: back to the store the previous configuration holds */
			lockfile_release(lock);
			lock = old_lock;
			old_lock = NULL;
		}
		if (rc != 0 && previous) {
			log_error("the new configuration could not be started; starting the previous one "
				  "again (the file %s still holds the new one)",
				  current->path);
			config_free(current);
			current = previous;
			previous = NULL;
			continue;
		}
		if (previous != cfg)
			config_free(previous);
		previous = NULL;
		if (rc != 0 || !next)
			break;
		previous = current;
		current = next;
	}
	web_free(web);
	if (current != cfg)
		config_free(current);
	lockfile_release(lock);
	return rc;
}
