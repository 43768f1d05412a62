/*
 * atomicfile.h - replacing a file so that a crash leaves the old file or the new one,
 * never a mix.
 *
 * Two steps, so the caller can check the new content where it will live before it
 * replaces anything (SETPARAM loads the staged configuration file with the full loader):
 * atomicfile_stage writes the text to a temporary file next to the target, and
 * atomicfile_commit renames it over the target. A symbolic link at the path is followed:
 * the file it points to is replaced and the link stays.
 *
 * No global state; thread-safe (two writers of one path: the last commit wins). Returned
 * names are malloc'd and freed by the caller. On failure a one-line reason is written to
 * err (errlen bytes).
 */
#ifndef MODBRIDGE_ATOMICFILE_H
#define MODBRIDGE_ATOMICFILE_H

#include <stddef.h>

/*
 * Writes text to a new temporary file next to the file at path (in the same directory,
 * so a later rename is atomic and relative paths in it resolve the same), with the old
 * file's permission bits, and fsyncs it. A symbolic link at path is followed. Returns 0
 * and the temporary file's malloc'd name in *tmp_path, or MB_ERR_IO (MB_ERR_NOMEM).
 */
int atomicfile_stage(const char *path, const char *text, size_t len, char **tmp_path, char *err,
		     size_t errlen);

/*
 * Renames a staged file over path (following a symbolic link at path) and fsyncs the
 * directory: a crash leaves either the old or the new file, never a mix. Returns 0 or
 * MB_ERR_IO (the staged file is then removed), MB_ERR_NOMEM.
 */
int atomicfile_commit(const char *tmp_path, const char *path, char *err, size_t errlen);

/* Removes a staged file that is not wanted. Accepts NULL. */
void atomicfile_discard(const char *tmp_path);

#endif
