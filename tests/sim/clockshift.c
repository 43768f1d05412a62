/*
 * clockshift.c - an LD_PRELOAD shim for integration tests: clock_gettime() of
 * CLOCK_REALTIME returns the real time plus the whole seconds written in the file named by
 * $CLOCKSHIFT_FILE (read again at every call; missing or empty: no shift), so a test can
 * set the daemon's wall clock forward or back while its monotonic clock runs on, as NTP
 * does on a gateway without a battery-backed clock. tests/integration/test_clock_step.py
 * builds it with the system's cc. Only calls through the dynamic linker are shifted
 * (modbridge's own clock reads); glibc's internal ones are not.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real_clock_gettime;

__attribute__((constructor)) static void clockshift_init(void)
{
	void *sym = dlsym(RTLD_NEXT, "clock_gettime");
	memcpy(&real_clock_gettime, &sym, sizeof(real_clock_gettime));
}

static long long shift_seconds(void)
{
	const char *path = getenv("CLOCKSHIFT_FILE");
	if (!path)
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	char buf[32];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtoll(buf, NULL, 10);
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
	int rc = real_clock_gettime(id, ts);
	if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
		ts->tv_sec += (time_t)shift_seconds();
	return rc;
}
