/*
 * test_yamldoc.c - unit tests of yamldoc.c, the one module over libyaml: the null rule,
 * node access, byte spans (UTF-8, a byte order mark), syntax errors with their lines
 * (encoding errors included), what follows a document, the file reader's bound, and
 * replacing values before writing a document out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "yamldoc.h"

static struct yamldoc *load(const char *text, unsigned flags)
{
	struct yamldoc_error e;
	struct yamldoc *doc = NULL;

	assert_int_equal(yamldoc_load(text, strlen(text), flags, &doc, &e), 0);
	assert_non_null(doc);
	return doc;
}

static void test_null_rule(void **state)
{
	static const struct {
		const char *value;
		bool null;
	} cases[] = {
		{"", true},        {"~", true},      {"null", true}, {"Null", true},
		{"NULL", true},    {"nULL", false},  {"''", false},  {"\"\"", false},
		{"'null'", false}, {"\"~\"", false}, {"0", false},   {"[]", false},
		{"{}", false},     {"none", false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[64];
		struct yamldoc *doc;
		const struct yamldoc_node *root, *v;

		snprintf(text, sizeof(text), "k: %s\n", cases[i].value);
		doc = load(text, 0);
		root = yamldoc_root(doc);
		assert_int_equal(yamldoc_kind(root), YAMLDOC_MAPPING);
		v = yamldoc_map_value(doc, root, 0);
		if (yamldoc_is_null(v) != cases[i].null)
			fail_msg("'%s': null is %d, want %d", cases[i].value, yamldoc_is_null(v),
				 cases[i].null);
		yamldoc_free(doc);
	}
	assert_false(yamldoc_is_null(NULL));
}

static void test_nodes(void **state)
{
	const char text[] = "a: 1\n"
			    "list:\n"
			    "  - x\n"
			    "  - {k: v}\n"
			    "b: \"t\\0u\"\n"
			    "c: |\n"
			    "  block\n"
			    "f: [1, 2]\n";
	struct yamldoc *doc = load(text, 0);
	const struct yamldoc_node *root = yamldoc_root(doc), *list, *item, *b;
	long i;

	(void)state;
	assert_int_equal(yamldoc_map_len(root), 5);
	assert_int_equal(yamldoc_map_find(doc, root, "a"), 0);
	assert_int_equal(yamldoc_map_find(doc, root, "f"), 4);
	assert_int_equal(yamldoc_map_find(doc, root, "nope"), -1);
	assert_string_equal(yamldoc_scalar(yamldoc_map_key(doc, root, 0)), "a");
	assert_string_equal(yamldoc_scalar(yamldoc_map_value(doc, root, 0)), "1");
	assert_null(yamldoc_map_key(doc, root, 5));

	i = yamldoc_map_find(doc, root, "list");
	list = yamldoc_map_value(doc, root, (size_t)i);
	assert_int_equal(yamldoc_kind(list), YAMLDOC_SEQUENCE);
	assert_int_equal(yamldoc_seq_len(list), 2);
	assert_int_equal(yamldoc_line(list), 3);
	item = yamldoc_seq_item(doc, list, 1);
	assert_int_equal(yamldoc_kind(item), YAMLDOC_MAPPING);
	assert_true(yamldoc_is_flow(item));
	assert_false(yamldoc_is_flow(root));
	assert_int_equal(yamldoc_line(item), 4);
	assert_int_equal(yamldoc_column(item), 4);
	assert_null(yamldoc_seq_item(doc, list, 2));
	assert_int_equal(yamldoc_seq_len(root), 0); /* not a list */

	/* A scalar may hold a NUL: its length says so. */
	b = yamldoc_map_value(doc, root, (size_t)yamldoc_map_find(doc, root, "b"));
	assert_int_equal(yamldoc_scalar_len(b), 3);
	assert_int_equal(strlen(yamldoc_scalar(b)), 1);

	assert_true(yamldoc_is_block_scalar(yamldoc_map_value(doc, root, 3)));
	assert_false(yamldoc_is_block_scalar(b));
	assert_int_equal(yamldoc_kind(NULL), YAMLDOC_NONE);
	assert_int_equal(yamldoc_line(NULL), 1);
	yamldoc_free(doc);

	doc = load("", 0);
	assert_null(yamldoc_root(doc));
	yamldoc_free(doc);
	yamldoc_free(NULL);
}

/* libyaml's marks count characters; the spans must be bytes, after a byte order mark. */
static void test_spans(void **state)
{
	const char text[] = "\xef\xbb\xbf"
			    "\xc3\xa9t\xc3\xa9: \xe2\x82\xac 5\n"
			    "k: v\n";
	struct yamldoc *doc = load(text, YAMLDOC_SPANS);
	const struct yamldoc_node *root = yamldoc_root(doc), *v0, *k1, *v1;

	(void)state;
	assert_int_equal(yamldoc_text_start(doc), 3);
	v0 = yamldoc_map_value(doc, root, 0);
	assert_int_equal(yamldoc_start(doc, v0), strlen("\xef\xbb\xbf\xc3\xa9t\xc3\xa9: "));
	assert_int_equal(yamldoc_end(doc, v0),
			 strlen("\xef\xbb\xbf\xc3\xa9t\xc3\xa9: \xe2\x82\xac 5"));
	k1 = yamldoc_map_key(doc, root, 1);
	v1 = yamldoc_map_value(doc, root, 1);
	assert_memory_equal(text + yamldoc_start(doc, k1), "k", 1);
	assert_memory_equal(text + yamldoc_start(doc, v1), "v\n", 2);
	assert_int_equal(yamldoc_end(doc, v1), yamldoc_start(doc, v1) + 1);
	yamldoc_free(doc);
}

static void test_errors(void **state)
{
	struct yamldoc_error e;
	struct yamldoc *doc = NULL;
	const char bad_utf8[] = "a: 1\nb: 2\nc: \xff\n";

	(void)state;
	assert_int_equal(yamldoc_load("a: [1\nb: 2\n", 11, 0, &doc, &e), MB_ERR_INVAL);
	assert_null(doc);
	assert_false(e.encoding);
	assert_int_equal(e.line, 2); /* "b: 2" is where a ',' or ']' was expected */
	assert_int_equal(e.column, 2);
	assert_string_equal(e.problem, "did not find expected ',' or ']'");

	/* An encoding error has no mark: its line is counted from its byte offset. */
	assert_int_equal(yamldoc_load(bad_utf8, strlen(bad_utf8), 0, &doc, &e), MB_ERR_INVAL);
	assert_true(e.encoding);
	assert_int_equal(e.offset, 13);
	assert_int_equal(e.line, 3);
	assert_int_equal(e.column, 0);
	assert_string_equal(e.problem, "invalid leading UTF-8 octet");
}

static void test_rest(void **state)
{
	struct yamldoc_error e;
	struct yamldoc *doc;

	(void)state;
	doc = load("a: 1\n", YAMLDOC_ONE);
	assert_int_equal(yamldoc_rest(doc, &e), 0);
	yamldoc_free(doc);

	doc = load("a: 1\n---\n\nb: 2\n", YAMLDOC_ONE);
	assert_int_equal(yamldoc_rest(doc, &e), 1);
	assert_int_equal(e.line, 4);
	assert_int_equal(yamldoc_map_len(yamldoc_root(doc)), 1);
	yamldoc_free(doc);

	doc = load("a: 1\n---\nb: [\n", YAMLDOC_ONE);
	assert_int_equal(yamldoc_rest(doc, &e), MB_ERR_INVAL);
	assert_int_equal(e.line, 4);
	yamldoc_free(doc);

	/* Without YAMLDOC_ONE nothing after the document is read. */
	doc = load("a: 1\n---\nb: [\n", 0);
	assert_int_equal(yamldoc_rest(doc, &e), 0);
	yamldoc_free(doc);
}

static void test_read_file(void **state)
{
	char path[] = "/tmp/modbridge-yamldoc-XXXXXX", why[128], *text = NULL;
	int fd = mkstemp(path);
	size_t len = 0;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "a: 1\n", 5), 5);
	close(fd);
	assert_int_equal(yamldoc_read_file(path, 100, &text, &len, why, sizeof(why)), 0);
	assert_int_equal(len, 5);
	assert_string_equal(text, "a: 1\n");
	free(text);

	/* max bytes or more are refused. */
	assert_int_equal(yamldoc_read_file(path, 5, &text, &len, why, sizeof(why)), MB_ERR_IO);
	assert_string_equal(why, "larger than 5 bytes");
	assert_int_equal(yamldoc_read_file(path, 6, &text, &len, why, sizeof(why)), 0);
	free(text);
	unlink(path);

	assert_int_equal(yamldoc_read_file(path, 100, &text, &len, why, sizeof(why)), MB_ERR_IO);
	assert_string_equal(why, "No such file or directory");
}

static bool is_secret(const char *key)
{
	return !strcmp(key, "password");
}

static bool to_buf(void *ctx, const char *data, size_t len)
{
	char *buf = ctx;
	size_t used = strlen(buf);

	if (used + len >= 256)
		return false;
	memcpy(buf + used, data, len);
	buf[used + len] = '\0';
	return true;
}

static void test_replace_and_emit(void **state)
{
	const char text[] = "# a comment\nu: me\npassword: hunter2\nsub: {password: x, n: 1}\n";
	struct yamldoc *doc = load(text, 0);
	char buf[256] = "";
	const char *problem = "unset";

	(void)state;
	assert_int_equal(yamldoc_replace_values(doc, is_secret, "***"), 0);
	assert_int_equal(yamldoc_emit(doc, to_buf, buf, &problem), 0);
	assert_null(problem);
	assert_null(strstr(buf, "hunter2"));
	assert_null(strstr(buf, "comment"));
	assert_non_null(strstr(buf, "u: me\n"));
	assert_non_null(strstr(buf, "password: '***'\n"));
	assert_non_null(strstr(buf, "password: '***', n: 1"));
	/* The document is consumed, and still freed by its owner. */
	assert_null(yamldoc_root(doc));
	yamldoc_free(doc);

	/* A writer that gives up is an error, not a crash. */
	doc = load("k: v\n", 0);
	memset(buf, 'x', 255);
	buf[255] = '\0';
	assert_int_equal(yamldoc_emit(doc, to_buf, buf, &problem), MB_ERR_INVAL);
	yamldoc_free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_null_rule),
		cmocka_unit_test(test_nodes),
		cmocka_unit_test(test_spans),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_rest),
		cmocka_unit_test(test_read_file),
		cmocka_unit_test(test_replace_and_emit),
	};
	return cmocka_run_group_tests_name("yamldoc", tests, NULL, NULL);
}
