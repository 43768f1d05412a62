/*
 * atomicfile.c - replacing a file atomically: stage, then commit; see atomicfile.h.
 *
 * The classic sequence, each step for a reason: a temporary file in the target's own
 * directory (rename is atomic only within one file system), the old file's permission bits
 * (the file may hold a password), fsync of the data before the rename (or a crash could
 * leave the new name on empty blocks), and fsync of the directory after it (or a crash
 * could bring the old file back). Stateless; thread-safe.
 */
#include "atomicfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* The file path refers to, following a symbolic link; malloc'd. */
static char *real_target(const char *path)
{
	char *r = realpath(path, NULL);

	return r ? r : strdup(path);
}

int atomicfile_stage(const char *path, const char *text, size_t len, char **tmp_path, char *err,
		     size_t errlen)
{
	char *target = real_target(path), *dir_copy = NULL, *base_copy = NULL, *tmp = NULL;
	struct stat st;
	mode_t mode = 0600;
	int fd = -1, rc = MB_ERR_IO;
	size_t done = 0;

	if (!target)
		return MB_ERR_NOMEM;
	dir_copy = strdup(target);
	base_copy = strdup(target);
	if (!dir_copy || !base_copy) {
		rc = MB_ERR_NOMEM;
		goto out;
	}
	const char *dir = dirname(dir_copy), *base = basename(base_copy);
	size_t tmp_len = strlen(dir) + strlen(base) + 16;
	tmp = malloc(tmp_len);
	if (!tmp) {
		rc = MB_ERR_NOMEM;
		goto out;
	}
	snprintf(tmp, tmp_len, "%s/.%s.new-XXXXXX", dir, base);
	if (stat(target, &st) == 0)
		mode = st.st_mode & 07777;
	fd = mkstemp(tmp);
	if (fd < 0) {
		set_err(err, errlen, "cannot create a file in %s: %s", dir, strerror(errno));
		free(tmp);
		tmp = NULL;
		goto out;
	}
	/* The file may hold a password: the old file's bits, never wider by default. */
	if (fchmod(fd, mode) != 0) {
		set_err(err, errlen, "cannot set the permissions of %s: %s", tmp, strerror(errno));
		goto out;
	}
	while (done < len) {
		ssize_t n = write(fd, text + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			set_err(err, errlen, "cannot write %s: %s", tmp,
				strerror(n < 0 ? errno : EIO));
			goto out;
		}
		done += (size_t)n;
	}
	if (fsync(fd) != 0) {
		set_err(err, errlen, "cannot write %s to disk: %s", tmp, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0 && close(fd) != 0 && rc == 0) {
		set_err(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		rc = MB_ERR_IO;
	}
	if (rc && tmp) {
		unlink(tmp);
		free(tmp);
		tmp = NULL;
	}
	if (rc == 0)
		*tmp_path = tmp;
	free(target);
	free(dir_copy);
	free(base_copy);
	return rc;
}

int atomicfile_commit(const char *tmp_path, const char *path, char *err, size_t errlen)
{
	char *target = real_target(path), *dir_copy;
	int dfd, rc = 0;

	if (!target) {
		atomicfile_discard(tmp_path);
		return MB_ERR_NOMEM;
	}
	if (rename(tmp_path, target) != 0) {
		set_err(err, errlen, "cannot replace %s: %s", target, strerror(errno));
		atomicfile_discard(tmp_path);
		free(target);
		return MB_ERR_IO;
	}
	/* The rename itself must reach the disk, or a crash could bring the old file back. */
	dir_copy = strdup(target);
	if (!dir_copy) {
		free(target);
		return MB_ERR_NOMEM;
	}
	dfd = open(dirname(dir_copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0) {
		set_err(err, errlen, "%s was replaced, but its directory could not be synced: %s",
			target, strerror(errno));
		rc = MB_ERR_IO;
	}
	if (dfd >= 0)
		close(dfd);
	free(dir_copy);
	free(target);
	return rc;
}

void atomicfile_discard(const char *tmp_path)
{
	if (tmp_path)
		unlink(tmp_path);
}
