/*
 * privdrop.h - giving up root, the OpenBSD way: take what needs root, then become a user.
 *
 * `modbridge run` started as root (by hand, by an init script, in a container; under the
 * packaged systemd unit it starts as User=modbridge and nothing here happens) opens the
 * store and its lock as root, then, before any thread starts, hands the daemon's own state
 * (the store, its -wal/-shm files, its lock file, and the directories it created for them)
 * to the configured user, and switches to it for good: setgroups to the user's groups
 * (dialout for the serial ports), then setresgid, then setresuid, and checks that the real,
 * effective and saved ids are all the user's and that root cannot be had back.
 *
 * The user is gateway.user, else `modbridge` when that user exists. Without such a user the
 * daemon refuses to run as root unless gateway.allow_root is true (or, when the file does
 * not say, the environment has MODBRIDGE_ALLOW_ROOT=1: for test rigs and containers that run
 * everything as root). gateway.allow_root without gateway.user keeps root.
 *
 * What the user must still be able to open, and why it is checked right after the switch:
 * the daemon restarts in place (SIGHUP, SETPARAM, REBOOT) and then opens the store again;
 * libmosquitto reads the certificate and key files at every connection, and libcurl (the
 * http and ftp send modes) at every request; a serial port is opened again when it was lost
 * (a USB adapter unplugged). So a store or a TLS file the
 * user cannot read is an error at start-up (it would fail later, at a worse moment), and a
 * serial port or a configuration file it cannot read is a warning. Remote SETPARAM works
 * for a configuration file the user may replace (a file it owns in a directory it may
 * write): atomicfile.c writes the new file beside it and renames it.
 *
 * Threads: the daemon's main thread, before the workers start (setgroups and friends act
 * on the whole process, but nothing may run half as root and half not). Errors: 0 or a
 * negative mb_error, with the reason logged (file:line for gateway.user).
 */
#ifndef MODBRIDGE_PRIVDROP_H
#define MODBRIDGE_PRIVDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct config;

struct privdrop {
	bool pending;   /* a switch is to be made (at the first start) */
	bool done;      /* it was made: the process runs as user */
	char user[64];  /* who we become, or are */
	char group[64]; /* its primary group's name (for messages) */
	uid_t uid;
	gid_t gid;
	gid_t groups[64]; /* the user's groups (getgrouplist), the first 64 */
	int ngroups;
	char *created_top; /* the highest directory of the store's path that did not exist */
};

/*
 * Decides, before anything is opened, whether and to whom the daemon switches (pd is
 * filled). Returns 0, or MB_ERR_CONFIG when started as root with no user to become and root
 * not allowed, or with a gateway.user that does not exist (logged).
 */
int privdrop_prepare(const struct config *cfg, struct privdrop *pd);

/* Notes which directories of store_path do not exist yet (the daemon creates them, as root,
 * and hands them to the user). Before the store is locked the first time. */
void privdrop_note_store(struct privdrop *pd, const char *store_path);

/*
 * When a switch is pending: hands the store's files (store_path, its -wal and -shm, and
 * lock_path) and the directories noted to the user, switches for good, and checks what the
 * user can open (see above). Returns 0 (also when nothing is pending), or a negative
 * mb_error when the switch failed or the user could not use the store or a TLS file: the
 * daemon must not start.
 */
int privdrop_apply(struct privdrop *pd, const struct config *cfg, const char *store_path,
		   const char *lock_path);

/* A configuration loaded for a restart names another gateway.user: say that the process
 * keeps its user until it is started again. */
void privdrop_check_reload(const struct privdrop *pd, const struct config *next);

/* Frees what pd holds. */
void privdrop_clear(struct privdrop *pd);

#endif
