/* test_helpers.h - small helpers shared by the unit tests (test data paths, file reading). */
#ifndef MODBRIDGE_TEST_HELPERS_H
#define MODBRIDGE_TEST_HELPERS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Path of a file under tests/data (MODBRIDGE_TESTDATA is set by CTest). */
static inline const char *testdata_path(const char *rel)
{
	static char path[4096];
	const char *base = getenv("MODBRIDGE_TESTDATA");
	snprintf(path, sizeof(path), "%s/%s", base ? base : "tests/data", rel);
	return path;
}

/* Reads a whole file without its trailing newline; the caller frees. NULL if unreadable. */
static inline char *read_text_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)size + 1);
	if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (!buf)
		return NULL;
	buf[size] = '\0';
	while (size > 0 && (buf[size - 1] == '\n' || buf[size - 1] == '\r'))
		buf[--size] = '\0';
	return buf;
}

#endif
