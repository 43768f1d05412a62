/*
 * test_lockfile.c - one daemon per store: the second locker is refused with the holder's
 * pid, a holder killed with SIGKILL leaves no stale lock, the descriptor is close-on-exec,
 * and a path spelt another way is recognised as the same store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "lockfile.h"

struct fixture {
	char dir[64];
	char store[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/modbridge-lock-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->store, sizeof(f->store), "%s/store.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void second_locker_is_refused_with_the_pid(void **state)
{
	struct fixture *f = *state;
	struct lockfile *a = NULL, *b = NULL;
	char why[512], expected[256];
	int err = -1;

	assert_int_equal(lockfile_acquire(f->store, &a, why, sizeof(why), &err), 0);
	assert_string_equal(why, "");
	/* flock is per open file: even the same process cannot lock it twice. */
	assert_int_equal(lockfile_acquire(f->store, &b, why, sizeof(why), &err), MB_ERR_STORE);
	assert_null(b);
	assert_int_equal(err, 0);
	snprintf(expected, sizeof(expected), "store %s is in use by modbridge (pid %ld)", f->store,
		 (long)getpid());
	assert_string_equal(why, expected);

	lockfile_release(a);
	assert_int_equal(lockfile_acquire(f->store, &b, why, sizeof(why), NULL), 0);
	lockfile_release(b);
}

static void a_killed_holder_leaves_no_stale_lock(void **state)
{
	struct fixture *f = *state;
	struct lockfile *l = NULL;
	char why[512], expected[256];
	int ready[2];

	assert_int_equal(pipe(ready), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct lockfile *held = NULL;
		char buf[512];
		if (lockfile_acquire(f->store, &held, buf, sizeof(buf), NULL) != 0)
			_exit(1);
		if (write(ready[1], "L", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(ready[1]);
	char c = 0;
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);

	assert_int_equal(lockfile_acquire(f->store, &l, why, sizeof(why), NULL), MB_ERR_STORE);
	snprintf(expected, sizeof(expected), "store %s is in use by modbridge (pid %ld)", f->store,
		 (long)child);
	assert_string_equal(why, expected);

	assert_int_equal(kill(child, SIGKILL), 0);
	assert_int_equal(waitpid(child, NULL, 0), child);
	/* The lock file is still there, with the dead pid in it: it must not matter. */
	assert_int_equal(lockfile_acquire(f->store, &l, why, sizeof(why), NULL), 0);
	lockfile_release(l);
}

static void the_descriptor_is_close_on_exec(void **state)
{
	struct fixture *f = *state;
	struct lockfile *l = NULL;
	char why[512], link[64], target[PATH_MAX];
	int found = 0;

	assert_int_equal(lockfile_acquire(f->store, &l, why, sizeof(why), NULL), 0);
	for (int fd = 0; fd < 1024; fd++) {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, lockfile_path(l)) != 0)
			continue;
		found++;
		assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	}
	assert_int_equal(found, 1);
	lockfile_release(l);
}

static void another_spelling_is_the_same_store(void **state)
{
	struct fixture *f = *state;
	struct lockfile *l = NULL;
	char why[512], other[160], elsewhere[160];

	assert_int_equal(lockfile_acquire(f->store, &l, why, sizeof(why), NULL), 0);
	snprintf(other, sizeof(other), "%s/./store.db", f->dir);
	snprintf(elsewhere, sizeof(elsewhere), "%s/other.db", f->dir);
	assert_true(lockfile_covers(l, f->store));
	assert_true(lockfile_covers(l, other));
	assert_false(lockfile_covers(l, elsewhere));
	lockfile_release(l);
}

static void an_impossible_path_says_why(void **state)
{
	struct fixture *f = *state;
	struct lockfile *l = NULL;
	char why[512], file[160], store[200];
	int err = 0;

	snprintf(file, sizeof(file), "%s/plainfile", f->dir);
	FILE *fp = fopen(file, "w");
	assert_non_null(fp);
	fclose(fp);
	snprintf(store, sizeof(store), "%s/store.db", file);
	assert_int_equal(lockfile_acquire(store, &l, why, sizeof(why), &err), MB_ERR_IO);
	assert_null(l);
	assert_int_equal(err, ENOTDIR);
	assert_non_null(strstr(why, "store.db.lock"));
	assert_non_null(strstr(why, "Not a directory"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(second_locker_is_refused_with_the_pid, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_killed_holder_leaves_no_stale_lock, setup,
						teardown),
		cmocka_unit_test_setup_teardown(the_descriptor_is_close_on_exec, setup, teardown),
		cmocka_unit_test_setup_teardown(another_spelling_is_the_same_store, setup,
						teardown),
		cmocka_unit_test_setup_teardown(an_impossible_path_says_why, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
