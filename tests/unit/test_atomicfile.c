/*
 * test_atomicfile.c - unit tests of atomicfile.c: staging a file next to its target with
 * the target's permission bits, committing it through a symbolic link, discarding it, and
 * the errors of a directory that cannot be written.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "atomicfile.h"
#include "error.h"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = calloc(1, 4096);

	assert_non_null(f);
	assert_non_null(buf);
	assert_true(fread(buf, 1, 4095, f) < 4095);
	fclose(f);
	return buf;
}

static void test_stage_and_commit(void **state)
{
	char dir[] = "/tmp/modbridge-atomicfile-XXXXXX", path[128], link[128], err[256];
	char *tmp = NULL, *text;
	struct stat st;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/real.yaml", dir);
	snprintf(link, sizeof(link), "%s/link.yaml", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("old\n", f);
	fclose(f);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(symlink("real.yaml", link), 0);

	/* Staged next to the target, same permission bits; the old file is untouched. */
	assert_int_equal(atomicfile_stage(link, "new\n", 4, &tmp, err, sizeof(err)), 0);
	assert_true(strncmp(tmp, dir, strlen(dir)) == 0);
	assert_int_equal(stat(tmp, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	text = slurp(path);
	assert_string_equal(text, "old\n");
	free(text);

	/* Committing through the link replaces the target and keeps the link. */
	assert_int_equal(atomicfile_commit(tmp, link, err, sizeof(err)), 0);
	text = slurp(path);
	assert_string_equal(text, "new\n");
	free(text);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(access(tmp, F_OK), -1);
	free(tmp);

	/* A discarded stage leaves nothing behind. */
	assert_int_equal(atomicfile_stage(path, "x", 1, &tmp, err, sizeof(err)), 0);
	atomicfile_discard(tmp);
	assert_int_equal(access(tmp, F_OK), -1);
	free(tmp);
	atomicfile_discard(NULL);

	/* A directory that cannot be written is reported, not crashed on. */
	assert_int_equal(atomicfile_stage("/proc/modbridge-nope/x.yaml", "x", 1, &tmp, err,
					  sizeof(err)),
			 MB_ERR_IO);
	assert_non_null(strstr(err, "cannot create a file in /proc/modbridge-nope"));

	unlink(link);
	unlink(path);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stage_and_commit),
	};
	return cmocka_run_group_tests_name("atomicfile", tests, NULL, NULL);
}
