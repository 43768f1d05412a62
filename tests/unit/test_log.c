/*
 * test_log.c - log levels, the line format, the journal prefix, and logging from several
 * threads while the level changes (run under ThreadSanitizer by scripts/test.sh: the old
 * plain level and lazily set journal flag were data races there).
 *
 * The single-threaded cases redirect stderr to a temp file while they log. The threaded and
 * journal cases run this program again as a child ("--child MODE") whose stderr is a pipe:
 * the threads' lines must be the first of a process (they also race for the journal
 * decision, made once per process), and a sanitizer report, which goes to the same stderr,
 * is then printed by the parent instead of being parsed as a log line.
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"
#include "test_helpers.h"

#define WRITERS 4
#define LINES_PER_WRITER 300

static const char *self_path;
static char capture_path[] = "/tmp/modbridge-test-log-XXXXXX";
static int saved_stderr = -1;

/* Sends stderr to a fresh temp file until capture_end(). */
static void capture_begin(void)
{
	strcpy(capture_path, "/tmp/modbridge-test-log-XXXXXX");
	int fd = mkstemp(capture_path);
	assert_true(fd >= 0);
	close(fd);
	/* O_APPEND: every write(2) of every thread lands at the end, whole. */
	fd = open(capture_path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(saved_stderr >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
}

/* Restores stderr; returns what was logged (the caller frees). */
static char *capture_end(void)
{
	assert_int_equal(dup2(saved_stderr, STDERR_FILENO), STDERR_FILENO);
	close(saved_stderr);
	saved_stderr = -1;
	char *text = read_text_file(capture_path);
	unlink(capture_path);
	assert_non_null(text);
	return text;
}

static int count_lines(const char *text)
{
	int n = 0;
	for (const char *p = text; *p; p++)
		n += *p == '\n';
	return *text ? n + 1 : 0; /* read_text_file drops the last newline */
}

/* "2024-05-01T12:00:00.123Z <level>: <rest>" */
static int is_stamped_line(const char *line, const char *level, const char *rest, size_t rest_len)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ ";
	for (size_t i = 0; i < sizeof(shape) - 1; i++) {
		if (shape[i] == 'd' ? (line[i] < '0' || line[i] > '9') : line[i] != shape[i])
			return 0;
	}
	line += sizeof(shape) - 1;
	size_t n = strlen(level);
	return strncmp(line, level, n) == 0 && strncmp(line + n, ": ", 2) == 0 &&
	       strncmp(line + n + 2, rest, rest_len) == 0;
}

struct writer {
	pthread_barrier_t *start;
	int id;
};

static void *writer_main(void *arg)
{
	const struct writer *w = arg;
	pthread_barrier_wait(w->start);
	for (int i = 0; i < LINES_PER_WRITER; i++) {
		log_info("writer %d line %d", w->id, i);
		log_debug("writer %d detail %d", w->id, i);
	}
	return NULL;
}

static void *level_changer_main(void *arg)
{
	pthread_barrier_wait(arg);
	for (int i = 0; i < LINES_PER_WRITER; i++)
		log_set_level(i % 2 ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	return NULL;
}

/* Child "threads": the process's first lines come from WRITERS threads at once while
 * another flips the level between info and debug. */
static int child_threads(void)
{
	pthread_barrier_t start;
	pthread_t threads[WRITERS + 1];
	struct writer writers[WRITERS];

	if (pthread_barrier_init(&start, NULL, WRITERS + 1) != 0)
		return 2;
	for (int i = 0; i < WRITERS; i++) {
		writers[i] = (struct writer){.start = &start, .id = i};
		if (pthread_create(&threads[i], NULL, writer_main, &writers[i]) != 0)
			return 2;
	}
	if (pthread_create(&threads[WRITERS], NULL, level_changer_main, &start) != 0)
		return 2;
	for (int i = 0; i <= WRITERS; i++)
		pthread_join(threads[i], NULL);
	pthread_barrier_destroy(&start);
	return 0;
}

/* Child "journal": lines under JOURNAL_STREAM (set by the parent). */
static int child_journal(void)
{
	log_error("broken %d", 7);
	log_info("hello");
	log_debug("hidden");
	return 0;
}

/*
 * Runs this program as "--child MODE" (with JOURNAL_STREAM set when journal), returns its
 * stderr (the caller frees). Any exit but 0 (66 is ThreadSanitizer's) fails the test after
 * printing that output, so a sanitizer report is seen whole.
 */
static char *run_child(const char *mode, int journal)
{
	int out[2];
	assert_int_equal(pipe(out), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(out[1], STDERR_FILENO);
		close(out[0]);
		close(out[1]);
		if (journal)
			setenv("JOURNAL_STREAM", "8:12345", 1);
		else
			unsetenv("JOURNAL_STREAM");
		execl(self_path, self_path, "--child", mode, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	/* 4 writers x 300 x 2 lines of ~70 bytes: 170 kB */
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	assert_non_null(buf);
	ssize_t n;
	while (len < cap - 1 && (n = read(out[0], buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	close(out[0]);
	buf[len] = '\0';
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "child '%s' failed (status 0x%x); its stderr:\n%s", mode, status,
			buf);
		fail();
	}
	return buf;
}

/* Every info line comes out once and whole; debug lines come out or not, whole, as the
 * level flips. Under TSan the old plain int level and lazy journal flag failed here. */
static void threads_log_whole_lines_while_the_level_changes(void **state)
{
	(void)state;
	char *text = run_child("threads", 0);
	static char seen[WRITERS][LINES_PER_WRITER];
	int info = 0, debug = 0;
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		int id = -1, n = -1, end = 0;
		if (is_stamped_line(line, "info", "writer ", 7)) {
			assert_int_equal(sscanf(strstr(line, "writer "), "writer %d line %d%n", &id,
						&n, &end),
					 2);
			assert_true(id >= 0 && id < WRITERS && n >= 0 && n < LINES_PER_WRITER);
			assert_int_equal(seen[id][n]++, 0);
			info++;
		} else {
			if (!is_stamped_line(line, "debug", "writer ", 7))
				fail_msg("not a whole log line: '%s'", line);
			assert_int_equal(sscanf(strstr(line, "writer "), "writer %d detail %d%n",
						&id, &n, &end),
					 2);
			debug++;
		}
		assert_true(end > 0 && strstr(line, "writer ")[end] == '\0');
	}
	assert_int_equal(info, WRITERS * LINES_PER_WRITER);
	assert_true(debug <= WRITERS * LINES_PER_WRITER);
	free(text);
}

static void levels_filter_lines(void **state)
{
	(void)state;
	log_set_level(LOG_LVL_WARN);
	assert_int_equal(log_get_level(), LOG_LVL_WARN);
	capture_begin();
	log_error("e %d", 1);
	log_warn("w %s", "2");
	log_info("i 3");
	log_debug("d 4");
	char *text = capture_end();
	assert_int_equal(count_lines(text), 2);
	assert_true(is_stamped_line(text, "error", "e 1\n", 4));
	assert_true(is_stamped_line(strchr(text, '\n') + 1, "warning", "w 2", 4));
	free(text);

	log_set_level(LOG_LVL_DEBUG);
	assert_int_equal(log_get_level(), LOG_LVL_DEBUG);
	capture_begin();
	log_info("i 3");
	log_debug("d 4");
	text = capture_end();
	assert_int_equal(count_lines(text), 2);
	assert_true(is_stamped_line(text, "info", "i 3\n", 4));
	assert_true(is_stamped_line(strchr(text, '\n') + 1, "debug", "d 4", 4));
	free(text);
	log_set_level(LOG_LVL_INFO);
}

static void long_lines_are_cut_and_still_end_a_line(void **state)
{
	(void)state;
	static char big[5000];
	memset(big, 'x', sizeof(big) - 1);
	capture_begin();
	log_warn("%s", big);
	log_warn("after");
	char *text = capture_end();
	assert_int_equal(count_lines(text), 2);
	char *second = strchr(text, '\n');
	assert_non_null(second);
	/* 2048-byte buffer: 2046 characters, then the newline. */
	assert_int_equal(second - text, 2046);
	assert_true(is_stamped_line(second + 1, "warning", "after", 6));
	free(text);
}

static void journal_lines_carry_the_priority_and_no_stamp(void **state)
{
	(void)state;
	char *text = run_child("journal", 1);
	assert_string_equal(text, "<3>broken 7\n<6>hello\n");
	free(text);
}

int main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "--child") == 0)
		return strcmp(argv[2], "threads") == 0 ? child_threads() : child_journal();
	self_path = argv[0];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(threads_log_whole_lines_while_the_level_changes),
		cmocka_unit_test(levels_filter_lines),
		cmocka_unit_test(long_lines_are_cut_and_still_end_a_line),
		cmocka_unit_test(journal_lines_carry_the_priority_and_no_stamp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
