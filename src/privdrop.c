/*
 * privdrop.c - from root to the daemon's user, once and for good; see privdrop.h.
 *
 * _GNU_SOURCE for setresuid/getresuid: setting and then checking all three ids (real,
 * effective, saved) is the point; setuid() alone leaves the reader to remember the rule
 * that makes it equivalent for root.
 */
#define _GNU_SOURCE
#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "log.h"

#define DEFAULT_USER "modbridge"

static bool env_allow_root(void)
{
	const char *v = getenv("MODBRIDGE_ALLOW_ROOT");
	return v && !strcmp(v, "1");
}

/* getpwnam_r into *pw (strings in buf); NULL when there is no such user. */
static struct passwd *find_user(const char *name, struct passwd *pw, char *buf, size_t len)
{
	struct passwd *found = NULL;
	if (getpwnam_r(name, pw, buf, len, &found) != 0)
		return NULL;
	return found;
}

int privdrop_prepare(const struct config *cfg, struct privdrop *pd)
{
	struct passwd pwbuf, *pw = NULL;
	char buf[4096];

	memset(pd, 0, sizeof(*pd));
	if (geteuid() != 0) {
		pw = cfg->user ? find_user(cfg->user, &pwbuf, buf, sizeof(buf)) : NULL;
		if (cfg->user && (!pw || pw->pw_uid != geteuid()))
			log_warn("%s:%d: gateway.user: '%s' applies only when modbridge is started as "
				 "root; it runs as uid %u (under systemd, the unit's User= chooses)",
				 cfg->path, cfg->user_line, cfg->user, (unsigned)geteuid());
		return 0;
	}
	bool allow_root = cfg->allow_root_set ? cfg->allow_root : env_allow_root();
	const char *name = cfg->user ? cfg->user : allow_root ? NULL : DEFAULT_USER;
	if (name)
		pw = find_user(name, &pwbuf, buf, sizeof(buf));
	if (cfg->user && !pw) {
		log_error("%s:%d: gateway.user: there is no user '%s' on this system; not starting "
			  "as root",
			  cfg->path, cfg->user_line, cfg->user);
		return MB_ERR_CONFIG;
	}
	if (pw && pw->pw_uid != 0) {
		struct group grbuf, *gr = NULL;
		char grtext[4096];
		snprintf(pd->user, sizeof(pd->user), "%s", pw->pw_name);
		if (getgrgid_r(pw->pw_gid, &grbuf, grtext, sizeof(grtext), &gr) == 0 && gr)
			snprintf(pd->group, sizeof(pd->group), "%s", gr->gr_name);
		else
			snprintf(pd->group, sizeof(pd->group), "%u", (unsigned)pw->pw_gid);
		pd->uid = pw->pw_uid;
		pd->gid = pw->pw_gid;
		pd->ngroups = (int)(sizeof(pd->groups) / sizeof(pd->groups[0]));
		if (getgrouplist(pd->user, pw->pw_gid, pd->groups, &pd->ngroups) < 0) {
			log_warn("user %s is in more than %zu groups; only the first %zu are kept",
				 pd->user, sizeof(pd->groups) / sizeof(pd->groups[0]),
				 sizeof(pd->groups) / sizeof(pd->groups[0]));
			pd->ngroups = (int)(sizeof(pd->groups) / sizeof(pd->groups[0]));
		}
		pd->pending = true;
		return 0;
	}
	if (allow_root) {
		log_warn("running as root (%s): a remote SETPARAM or a flaw in a library would act "
			 "with every right on this machine; set gateway.user to run as a user",
			 cfg->allow_root_set ? "gateway.allow_root is true"
					     : "MODBRIDGE_ALLOW_ROOT=1 in the environment");
		return 0;
	}
	log_error("%s: modbridge was started as root and has no user to become: create the system "
		  "user '" DEFAULT_USER "' (the Debian package does; by hand: adduser --system "
		  "--group " DEFAULT_USER " && adduser " DEFAULT_USER " dialout), or name one in "
		  "gateway.user, or set gateway.allow_root: true to run as root; not starting",
		  cfg->path);
	return MB_ERR_CONFIG;
}

void privdrop_note_store(struct privdrop *pd, const char *store_path)
{
	char *path = strdup(store_path), *dir;
	struct stat st;

	free(pd->created_top);
	pd->created_top = NULL;
	if (!pd->pending || !path)
		goto out;
	/* Up from the store's directory while nothing is there. */
	dir = dirname(path);
	while (strcmp(dir, "/") != 0 && strcmp(dir, ".") != 0 && stat(dir, &st) != 0 &&
	       errno == ENOENT) {
		free(pd->created_top);
		pd->created_top = strdup(dir);
		dir = dirname(dir);
	}
out:
	free(path);
}

/* Gives path to the user when it is a regular file that root owns (made by this process, or
 * by an earlier run as root); files of other users are left alone. */
static int hand_file(const struct privdrop *pd, const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != 0)
		return 0;
	if (chown(path, pd->uid, pd->gid) != 0) {
		log_error("cannot give %s to user %s: %s; not starting", path, pd->user,
			  strerror(errno));
		return MB_ERR_IO;
	}
	return 0;
}

/* The store's directories this process created, from the store's own up to created_top. */
static int hand_dirs(const struct privdrop *pd, const char *store_path)
{
	char *path = strdup(store_path), *dir;
	int rc = 0;

	if (!path)
		return MB_ERR_NOMEM;
	for (dir = dirname(path); pd->created_top && rc == 0; dir = dirname(dir)) {
		if (chown(dir, pd->uid, pd->gid) != 0) {
			log_error("cannot give the directory %s to user %s: %s; not starting", dir,
				  pd->user, strerror(errno));
			rc = MB_ERR_IO;
		}
		if (!strcmp(dir, pd->created_top) || !strcmp(dir, "/") || !strcmp(dir, "."))
			break;
	}
	free(path);
	return rc;
}

static int hand_over(const struct privdrop *pd, const char *store_path, const char *lock_path)
{
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	char path[4096];
	int rc = hand_dirs(pd, store_path);

	for (size_t i = 0; rc == 0 && i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", store_path, suffixes[i]);
		rc = hand_file(pd, path);
	}
	if (rc == 0 && lock_path)
		rc = hand_file(pd, lock_path);
	return rc;
}

static int become(struct privdrop *pd)
{
	uid_t ru = (uid_t)-1, eu = (uid_t)-1, su = (uid_t)-1;
	gid_t rg = (gid_t)-1, eg = (gid_t)-1, sg = (gid_t)-1;

	if (setgroups((size_t)pd->ngroups, pd->groups) != 0 ||
	    setresgid(pd->gid, pd->gid, pd->gid) != 0 ||
	    setresuid(pd->uid, pd->uid, pd->uid) != 0) {
		log_error("cannot become user %s (uid %u): %s; not starting", pd->user,
			  (unsigned)pd->uid, strerror(errno));
		return MB_ERR_IO;
	}
	if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 || ru != pd->uid ||
	    eu != pd->uid || su != pd->uid || rg != pd->gid || eg != pd->gid || sg != pd->gid ||
	    setresuid(0, 0, 0) == 0 || geteuid() == 0) {
		log_error("switching to user %s did not hold (uids %u/%u/%u, gids %u/%u/%u); not "
			  "starting",
			  pd->user, (unsigned)ru, (unsigned)eu, (unsigned)su, (unsigned)rg,
			  (unsigned)eg, (unsigned)sg);
		return MB_ERR_IO;
	}
	pd->done = true;
	return 0;
}

/* An error when the user cannot open path with mode (R_OK...); what says what it is. */
static int need(const struct privdrop *pd, const char *what, const char *path, int mode,
		const char *why, const char *fix)
{
	if (!path || access(path, mode) == 0)
		return 0;
	log_error("%s %s: user %s cannot %s it (%s): %s; %s; not starting", what, path, pd->user,
		  mode & W_OK ? "write" : "read", strerror(errno), why, fix);
	return MB_ERR_IO;
}

/* A warning when a device that is there now cannot be opened by the user. */
static void device_check(const struct privdrop *pd, const char *what, const char *device)
{
	struct stat st;

	if (!device || stat(device, &st) != 0 || access(device, R_OK | W_OK) == 0)
		return;
	int err = errno;
	struct group *gr = getgrgid(st.st_gid);
	log_warn("%s %s: user %s cannot open it (%s): add the user to the device's group (adduser "
		 "%s %s)",
		 what, device, pd->user, strerror(err), pd->user, gr ? gr->gr_name : "dialout");
}

static int check_access(const struct privdrop *pd, const struct config *cfg, const char *store_path,
			const char *lock_path)
{
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	const char *restart = "the daemon opens it again at a restart (SIGHUP, SETPARAM, REBOOT)";
	const char *tls = "libmosquitto reads it at every connection";
	char path[4096], fix[4200];
	char *copy = strdup(store_path);
	int rc;

	if (!copy)
		return MB_ERR_NOMEM;
	snprintf(fix, sizeof(fix), "give it to the user (chown %s:%s ...)", pd->user, pd->group);
	rc = need(pd, "store directory", dirname(copy), W_OK | X_OK,
		  "SQLite makes the store's -wal and -shm files there when it opens it", fix);
	free(copy);
	for (size_t i = 0; rc == 0 && i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", store_path, suffixes[i]);
		if (access(path, F_OK) == 0)
			rc = need(pd, "store file", path, R_OK | W_OK, restart, fix);
	}
	if (rc == 0)
		rc = need(pd, "store lock", lock_path, R_OK | W_OK, restart, fix);
	if (rc == 0 && cfg->mqtt.enabled && cfg->mqtt.tls) {
		snprintf(fix, sizeof(fix),
			 "make it readable by the user (chgrp %s FILE; chmod g+r FILE)", pd->group);
		rc = need(pd, "mqtt.ca_file", cfg->mqtt.ca_file, R_OK, tls, fix);
		if (rc == 0)
			rc = need(pd, "mqtt.ca_path", cfg->mqtt.ca_path, R_OK | X_OK, tls, fix);
		if (rc == 0)
			rc = need(pd, "mqtt.cert_file", cfg->mqtt.cert_file, R_OK, tls, fix);
		if (rc == 0)
			rc = need(pd, "mqtt.key_file", cfg->mqtt.key_file, R_OK, tls, fix);
	}
	/* libcurl reads these at every request (HTTP) or upload (FTP). */
	const char *curl = "libcurl reads it at every request";
	const struct {
		const char *what, *path;
	} sent[] = {
		{"http.ca_file", cfg->logger.mode == LOGGER_HTTP ? cfg->http.ca_file : NULL},
		{"http.cert_file", cfg->logger.mode == LOGGER_HTTP ? cfg->http.cert_file : NULL},
		{"http.key_file", cfg->logger.mode == LOGGER_HTTP ? cfg->http.key_file : NULL},
		{"ftp.ca_file", cfg->logger.mode == LOGGER_FTP ? cfg->ftp.ca_file : NULL},
		{"ftp.cert_file", cfg->logger.mode == LOGGER_FTP ? cfg->ftp.cert_file : NULL},
		{"ftp.key_file", cfg->logger.mode == LOGGER_FTP ? cfg->ftp.key_file : NULL},
		{"ftp.known_hosts", cfg->logger.mode == LOGGER_FTP ? cfg->ftp.known_hosts : NULL},
	};
	if (rc == 0)
		snprintf(fix, sizeof(fix),
			 "make it readable by the user (chgrp %s FILE; chmod g+r FILE)", pd->group);
	for (size_t i = 0; rc == 0 && i < sizeof(sent) / sizeof(sent[0]); i++)
		rc = need(pd, sent[i].what, sent[i].path, R_OK, curl, fix);
	if (rc)
		return rc;

	if (access(cfg->path, R_OK) != 0)
		log_warn("%s: user %s cannot read it (%s): SIGHUP, SETPARAM and REBOOT would not "
			 "restart the daemon",
			 cfg->path, pd->user, strerror(errno));
	/* Scripts are read again with the configuration at every restart in place. */
	for (size_t i = 0; i <= cfg->mqtt.script_topic_count; i++) {
		const char *script = i == 0 ? cfg->logger.script_path
					    : cfg->mqtt.script_topics[i - 1].script_path;
		if (script && access(script, R_OK) != 0)
			log_warn("script %s: user %s cannot read it (%s): SIGHUP, SETPARAM and "
				 "REBOOT would not restart the daemon",
				 script, pd->user, strerror(errno));
	}
	if (cfg->remote.allow_setparam) {
		copy = strdup(cfg->path);
		if (copy && access(dirname(copy), W_OK | X_OK) != 0)
			log_warn("%s: user %s cannot write in its directory (%s): SETPARAM cannot "
				 "replace the file (it writes the new one beside it and renames it)",
				 cfg->path, pd->user, strerror(errno));
		free(copy);
	}
	for (size_t i = 0; i < cfg->serial_port_count; i++) {
		char what[160];
		snprintf(what, sizeof(what), "serial port %s", cfg->serial_ports[i].name);
		device_check(pd, what, cfg->serial_ports[i].device);
	}
	device_check(pd, "modem", cfg->modem.device);
	return 0;
}

int privdrop_apply(struct privdrop *pd, const struct config *cfg, const char *store_path,
		   const char *lock_path)
{
	int rc;

	if (!pd->pending)
		return 0;
	pd->pending = false;
	rc = hand_over(pd, store_path, lock_path);
	if (rc == 0)
		rc = become(pd);
	if (rc)
		return rc;
	log_info("running as user %s (uid %u, gid %u, %d group(s)); root opened the store and its "
		 "lock, which now belong to it",
		 pd->user, (unsigned)pd->uid, (unsigned)pd->gid, pd->ngroups);
	return check_access(pd, cfg, store_path, lock_path);
}

void privdrop_check_reload(const struct privdrop *pd, const struct config *next)
{
	if (pd->done && next->user && strcmp(next->user, pd->user) != 0)
		log_warn("%s:%d: gateway.user: the daemon goes on as user %s; '%s' takes effect when "
			 "it is started again (as root)",
			 next->path, next->user_line, pd->user, next->user);
}

void privdrop_clear(struct privdrop *pd)
{
	free(pd->created_top);
	pd->created_top = NULL;
}
