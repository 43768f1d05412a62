/*
 * lockfile.h - one daemon per store: an exclusive flock(2) on "<store>.lock".
 *
 * `modbridge run` holds this lock for as long as it runs, across restarts (SIGHUP, remote
 * REBOOT/SETPARAM); `read`, `queue` and `at` never take it. A second daemon on the same
 * store is refused with "store <path> is in use by modbridge (pid N)".
 *
 * Why a separate file and flock: SQLite holds POSIX (fcntl) locks on the database file,
 * and those belong to the process, so closing any other descriptor of the database file
 * would silently drop them. SQLite never opens the lock file. A flock dies with its
 * process (kill -9, power cut), so a lock file left behind never blocks the next start;
 * the file is therefore never deleted (unlinking it would let two processes lock two
 * different files under the same name). It holds the holder's pid as text, for the
 * message. The descriptor is O_CLOEXEC: no child process inherits the lock.
 *
 * Ownership: lockfile_acquire gives the caller a lock that lockfile_release frees.
 * Threading: a lock object is used by one thread (the daemon's main thread).
 * Errors: MB_ERR_STORE when another process holds the lock, MB_ERR_IO (or
 * MB_ERR_READONLY) when the lock file cannot be created or locked; the reason, with
 * the path and the OS's words, is written to why. Nothing is logged here.
 */
#ifndef MODBRIDGE_LOCKFILE_H
#define MODBRIDGE_LOCKFILE_H

#include <stdbool.h>
#include <stddef.h>

struct lockfile;

/*
 * Creates (if needed) and locks "<store_path>.lock" without waiting; its directory must
 * exist (store_make_parent_dirs). On failure *os_errno (if not NULL) receives the OS error
 * (0 when the lock is held by another process), for a hint (store_os_hint).
 */
int lockfile_acquire(const char *store_path, struct lockfile **out, char *why, size_t len,
		     int *os_errno);

/* True when l is the lock of store_path (the same lock file, however the path is spelt). */
bool lockfile_covers(const struct lockfile *l, const char *store_path);

/* The lock file's path (for messages). */
const char *lockfile_path(const struct lockfile *l);

/* Releases the lock and frees l (the file stays). Accepts NULL. */
void lockfile_release(struct lockfile *l);

#endif
