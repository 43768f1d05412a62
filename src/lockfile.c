/*
 * lockfile.c - the store's lock file; see lockfile.h.
 *
 * The holder writes its pid after locking, so a loser can meet an empty file for a
 * moment (the holder has just locked it): it reads again for up to a second before it
 * gives up on naming the pid.
 */
#include "lockfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"

struct lockfile {
	int fd;
	char *path; /* "<store>.lock" */
};

static char *lock_path_of(const char *store_path)
{
	size_t n = strlen(store_path) + sizeof(".lock");
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s.lock", store_path);
	return p;
}

/* The pid written by the holder, or 0 when the file holds none (yet). */
static long read_pid(const char *path)
{
	for (int attempt = 0; attempt < 20; attempt++) {
		char text[32] = "";
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return 0;
		ssize_t got = read(fd, text, sizeof(text) - 1);
		close(fd);
		if (got > 0) {
			text[got] = '\0';
			char *end = NULL;
			long pid = strtol(text, &end, 10);
			if (pid > 0 && end && *end == '\n')
				return pid;
		}
		struct timespec pause = {.tv_sec = 0, .tv_nsec = 50L * 1000 * 1000};
		nanosleep(&pause, NULL);
	}
	return 0;
}

/* Replaces a previous holder's pid with ours. A failure only costs the pid in a loser's
 * message ("pid unknown"), so it does not stop the start. */
static void write_pid(int fd)
{
	char text[32];
	int n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == 0 && pwrite(fd, text, (size_t)n, 0) != n)
		return;
}

int lockfile_acquire(const char *store_path, struct lockfile **out, char *why, size_t len,
		     int *os_errno)
{
	struct lockfile *l = calloc(1, sizeof(*l));
	int err = 0, rc;

	if (os_errno)
		*os_errno = 0;
	if (!l || !(l->path = lock_path_of(store_path))) {
		free(l);
		snprintf(why, len, "store %s: out of memory", store_path);
		return MB_ERR_NOMEM;
	}
	l->fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (l->fd < 0) {
		err = errno;
		snprintf(why, len, "store %s: cannot create its lock file %s: %s", store_path,
			 l->path, strerror(err));
		rc = err == EROFS ? MB_ERR_READONLY : MB_ERR_IO;
		goto fail;
	}
	if (flock(l->fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK) {
			long pid = read_pid(l->path);
			if (pid > 0)
				snprintf(why, len, "store %s is in use by modbridge (pid %ld)",
					 store_path, pid);
			else
				snprintf(why, len,
					 "store %s is in use by modbridge (pid unknown: %s holds none)",
					 store_path, l->path);
			rc = MB_ERR_STORE;
		} else {
			err = errno;
			snprintf(why, len, "store %s: cannot lock %s: %s", store_path, l->path,
				 strerror(err));
			rc = MB_ERR_IO;
		}
		goto fail;
	}
	write_pid(l->fd);
	if (len)
		why[0] = '\0';
	*out = l;
	return 0;
fail:
	if (os_errno)
		*os_errno = err;
	lockfile_release(l);
	return rc;
}

bool lockfile_covers(const struct lockfile *l, const char *store_path)
{
	struct stat held, named;
	char *path = lock_path_of(store_path);
	bool same = path && fstat(l->fd, &held) == 0 && stat(path, &named) == 0 &&
		    held.st_dev == named.st_dev && held.st_ino == named.st_ino;
	free(path);
	return same;
}

const char *lockfile_path(const struct lockfile *l)
{
	return l->path;
}

void lockfile_release(struct lockfile *l)
{
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd); /* closing the only descriptor drops the flock */
	free(l->path);
	free(l);
}
