/*
 * config.c - the modbridge configuration: YAML file -> validated struct.
 *
 * Reads the whole file, lets libyaml build the node tree, then walks the tree section by
 * section, filling a fresh struct config with defaults and the values found. Every
 * problem is recorded with its line and the walk goes on, so one run reports all of them;
 * at the end they are sorted into file order and handed to the caller's config_diags.
 * Paths to TLS files are opened, and what they hold is checked with certinfo.h (a
 * certificate, an unencrypted key of that certificate), so `run` refuses what would only
 * fail at every handshake. This module never logs: the caller decides how to show the
 * diagnostics.
 * docs/configuration.md is the user-facing reference of every key checked here.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "certinfo.h"
#include "decode.h"
#include "error.h"
#include "topic.h"

/* A configuration is a few kilobytes; the bound only stops a wrong path from eating RAM. */
#define MAX_FILE_SIZE (4L * 1024 * 1024)
#define MAX_KEYS 24
#define KEY_LEN 160
#define ID_MAX_LEN 64
#define PERIOD_MIN_MS 100LL
#define PERIOD_MAX_MS (7LL * 24 * 3600 * 1000)

#define READ_COMMANDS \
	"0x01 coils, 0x02 discrete inputs, 0x03 holding registers, 0x04 input registers"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* A diagnostic before sorting: seq keeps messages of one line in the order found. */
struct pending {
	int line;
	size_t seq;
	enum config_severity severity;
	char *text;
};

struct ctx {
	const char *path;
	char *dir; /* directory of path for relative file names; NULL: current dir */
	yaml_document_t *doc;
	struct pending *diags;
	size_t ndiags;
	size_t cap;
	size_t errors;
	bool nomem;
	struct config *cfg;
};

/*
 * One YAML mapping being read: the known keys found in it, by position in names.
 * Unknown and duplicate keys are reported when it is scanned.
 */
struct obj {
	struct ctx *c;
	const char *path; /* key path of the mapping: "" at the top, "serial[0]", ... */
	int line;         /* 1-based line of the mapping, used for missing keys */
	const char *const *names;
	size_t n;
	yaml_node_t *key[MAX_KEYS];
	yaml_node_t *val[MAX_KEYS];
};

static const char *const top_keys[] = {
	"gateway", "serial", "modbus", "logger", "mqtt", "remote", "modem",
};
static const char *const gateway_keys[] = {"imei"};
static const char *const serial_keys[] = {
	"name",      "device",     "baudrate",        "data_bits",          "parity",
	"stop_bits", "timeout_ms", "byte_timeout_ms", "silent_interval_ms", "turnaround_ms",
};
static const char *const modbus_keys[] = {"enabled", "serial", "logger", "devices"};
static const char *const device_keys[] = {
	"id",       "address",      "unit_id", "serial",      "command",    "start",
	"count",    "type",         "period",  "logger",      "timeout_ms", "byte_order",
	"optimize", "max_per_read", "retries", "backoff_max",
};
static const char *const logger_keys[] = {
	"id",
	"send_mode",
	"time_format",
	"array",
	"array_max_count",
	"array_max_bytes",
	"error_messages",
	"store",
	"mode",
	"topic",
	"use_script",
	"inflight_window",
	"max_messages",
	"max_bytes",
	"full_policy",
	"memory_max_messages",
	"memory_max_bytes",
};
static const char *const mqtt_keys[] = {
	"enabled",
	"broker",
	"username",
	"password",
	"client_id",
	"qos",
	"keepalive",
	"persistence",
	"ca_file",
	"ca_path",
	"cert_file",
	"key_file",
	"allow_all_certificates",
	"at_topics",
	"status_topic",
};
static const char *const at_topic_keys[] = {"topic", "response"};
static const char *const remote_keys[] = {
	"allow_writes",
	"allow_setparam",
	"allow_reboot",
	"allow_modem_passthrough",
};
static const char *const modem_keys[] = {"device", "baudrate", "timeout_ms"};

_Static_assert(ARRAY_SIZE(mqtt_keys) <= MAX_KEYS && ARRAY_SIZE(logger_keys) <= MAX_KEYS &&
		       ARRAY_SIZE(device_keys) <= MAX_KEYS && ARRAY_SIZE(serial_keys) <= MAX_KEYS,
	       "struct obj holds at most MAX_KEYS keys");

static const int baudrates[] = {
	1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600,
};

struct choice {
	const char *name;
	int value;
};

/* New register types go here (and into enum reg_type); nothing else needs to change. */
static const struct choice reg_types[] = {
	{"word", REG_TYPE_WORD},   {"int16", REG_TYPE_INT16},     {"uint32", REG_TYPE_UINT32},
	{"int32", REG_TYPE_INT32}, {"float32", REG_TYPE_FLOAT32}, {"uint64", REG_TYPE_UINT64},
	{"int64", REG_TYPE_INT64}, {"float64", REG_TYPE_FLOAT64},
};

static const struct choice reg_orders[] = {
	{"ABCD", REG_ORDER_ABCD},
	{"CDAB", REG_ORDER_CDAB},
	{"BADC", REG_ORDER_BADC},
	{"DCBA", REG_ORDER_DCBA},
};

static const struct choice full_policies[] = {
	{"drop_oldest", STORE_DROP_OLDEST},
	{"drop_newest", STORE_DROP_NEWEST},
};

static const struct choice parities[] = {
	{"none", 'N'}, {"even", 'E'}, {"odd", 'O'}, {"n", 'N'}, {"e", 'E'}, {"o", 'O'},
};

static const struct choice send_modes[] = {
	{"fifo", SEND_FIFO},
	{"lifo", SEND_LIFO},
};

static const struct choice time_formats[] = {
	{"iso8601", TIME_ISO8601},
	{"iso", TIME_ISO8601},
	{"unix", TIME_UNIX},
};

/* ---------------------------------------------------------------- diagnostics */

static char *vfmt(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static char *vfmt(const char *fmt, va_list ap)
{
	va_list ap2;
	char *s;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return NULL;
	s = malloc((size_t)n + 1);
	if (s)
		vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

static char *fmt_alloc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *fmt_alloc(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = vfmt(fmt, ap);
	va_end(ap);
	return s;
}

static void push_diag(struct ctx *c, enum config_severity sev, int line, char *text)
{
	if (!text) {
		c->nomem = true;
		return;
	}
	if (c->ndiags == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct pending *p = realloc(c->diags, cap * sizeof(*p));

		if (!p) {
			free(text);
			c->nomem = true;
			return;
		}
		c->diags = p;
		c->cap = cap;
	}
	c->diags[c->ndiags] = (struct pending){line, c->ndiags, sev, text};
	c->ndiags++;
	if (sev == CONFIG_ERROR)
		c->errors++;
}

static void vreport(struct ctx *c, enum config_severity sev, int line, const char *key,
		    const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

static void vreport(struct ctx *c, enum config_severity sev, int line, const char *key,
		    const char *fmt, va_list ap)
{
	char *msg = vfmt(fmt, ap);
	char *text;

	if (!msg) {
		c->nomem = true;
		return;
	}
	if (key)
		text = fmt_alloc("%s:%d: %s: %s", c->path, line, key, msg);
	else
		text = fmt_alloc("%s:%d: %s", c->path, line, msg);
	free(msg);
	push_diag(c, sev, line, text);
}

static void report(struct ctx *c, enum config_severity sev, int line, const char *key,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void report(struct ctx *c, enum config_severity sev, int line, const char *key,
		   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(c, sev, line, key, fmt, ap);
	va_end(ap);
}

static int cmp_pending(const void *a, const void *b)
{
	const struct pending *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Moves the pending diagnostics, in file order, to the caller's list. */
static int flush_diags(struct ctx *c, struct config_diags *out)
{
	struct config_diag *items;
	int rc = 0;

	if (c->ndiags == 0)
		return 0;
	qsort(c->diags, c->ndiags, sizeof(*c->diags), cmp_pending);
	items = realloc(out->items, (out->count + c->ndiags) * sizeof(*items));
	if (!items) {
		rc = MB_ERR_NOMEM;
		goto done;
	}
	out->items = items;
	for (size_t i = 0; i < c->ndiags; i++) {
		items[out->count].severity = c->diags[i].severity;
		items[out->count].text = c->diags[i].text;
		c->diags[i].text = NULL;
		out->count++;
		if (c->diags[i].severity == CONFIG_ERROR)
			out->errors++;
	}
done:
	for (size_t i = 0; i < c->ndiags; i++)
		free(c->diags[i].text);
	free(c->diags);
	c->diags = NULL;
	c->ndiags = c->cap = 0;
	return rc;
}

/* ---------------------------------------------------------------- YAML nodes */

static int node_line(const yaml_node_t *n)
{
	return n ? (int)n->start_mark.line + 1 : 1;
}

static bool is_null(const yaml_node_t *n)
{
	const char *v;

	if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	v = (const char *)n->data.scalar.value;
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

static const char *kind_name(const yaml_node_t *n)
{
	if (is_null(n))
		return "an empty value";
	switch (n->type) {
	case YAML_SCALAR_NODE: return "a single value";
	case YAML_SEQUENCE_NODE: return "a list";
	case YAML_MAPPING_NODE: return "a mapping";
	default: return "nothing";
	}
}

static const char *scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static size_t seq_len(const yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static yaml_node_t *seq_item(struct ctx *c, const yaml_node_t *n, size_t i)
{
	return yaml_document_get_node(c->doc, n->data.sequence.items.start[i]);
}

/* Case-insensitive optimal string alignment distance, for "did you mean". */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t d[34][34];

	if (la > 32 || lb > 32)
		return SIZE_MAX;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			int ca = tolower((unsigned char)a[i - 1]);
			int cb = tolower((unsigned char)b[j - 1]);
			size_t best = d[i - 1][j - 1] + (ca != cb);

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

static void join_names(const char *const *names, size_t n, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++) {
		int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", names[i]);

		if (w < 0)
			break;
		used += (size_t)w;
	}
}

/* Key paths longer than KEY_LEN are cut; only absurd user-written keys get there. */
static void key_path(const char *parent, const char *name, char *buf)
{
	int n;

	if (*parent)
		n = snprintf(buf, KEY_LEN, "%s.%s", parent, name);
	else
		n = snprintf(buf, KEY_LEN, "%s", name);
	if (n < 0)
		buf[0] = '\0';
}

static void report_unknown_key(struct obj *o, const yaml_node_t *k)
{
	const char *name = scalar(k);
	char key[KEY_LEN], allowed[512];
	const char *best = NULL;
	size_t best_d = SIZE_MAX;

	for (size_t i = 0; i < o->n; i++) {
		size_t d = edit_distance(name, o->names[i]);

		if (d < best_d) {
			best_d = d;
			best = o->names[i];
		}
	}
	/* Short keys get a stricter bound, or everything would look like everything. */
	if (best_d > (strlen(name) <= 4 ? 1u : 2u))
		best = NULL;
	key_path(o->path, name, key);
	join_names(o->names, o->n, allowed, sizeof(allowed));
	if (best)
		report(o->c, CONFIG_ERROR, node_line(k), key,
		       "unknown key '%.64s' (allowed: %s); did you mean '%s'?", name, allowed,
		       best);
	else
		report(o->c, CONFIG_ERROR, node_line(k), key, "unknown key '%.64s' (allowed: %s)",
		       name, allowed);
}

/*
 * Reads the keys of map (NULL: the section is absent, every key is unset) into o.
 * parent_line is used as the mapping's line when map is NULL.
 */
static void obj_scan(struct obj *o, struct ctx *c, const yaml_node_t *map, const char *path,
		     int parent_line, const char *const *names, size_t n)
{
	memset(o, 0, sizeof(*o));
	o->c = c;
	o->path = path;
	o->names = names;
	o->n = n;
	o->line = map ? node_line(map) : parent_line;
	if (!map)
		return;

	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		size_t i;

		if (!k || k->type != YAML_SCALAR_NODE) {
			report(c, CONFIG_ERROR, node_line(k), *path ? path : "top level",
			       "keys must be names, got %s as a key", k ? kind_name(k) : "nothing");
			continue;
		}
		for (i = 0; i < n; i++)
			if (!strcmp(scalar(k), names[i]))
				break;
		if (i == n) {
			report_unknown_key(o, k);
			continue;
		}
		if (o->key[i]) {
			char key[KEY_LEN];

			key_path(path, names[i], key);
			report(c, CONFIG_ERROR, node_line(k), key,
			       "duplicate key (first set on line %d)", node_line(o->key[i]));
			continue;
		}
		o->key[i] = k;
		o->val[i] = v;
	}
}

static size_t obj_index(const struct obj *o, const char *name)
{
	for (size_t i = 0; i < o->n; i++)
		if (!strcmp(o->names[i], name))
			return i;
	/* A name missing from the key table is a bug in this file, not in the input. */
	abort();
}

/* The value of a key, or NULL when the key is absent or its value is empty (null). */
static yaml_node_t *obj_get(const struct obj *o, const char *name)
{
	yaml_node_t *v = o->val[obj_index(o, name)];

	return is_null(v) ? NULL : v;
}

static int obj_line(const struct obj *o, const char *name)
{
	const yaml_node_t *k = o->key[obj_index(o, name)];

	return k ? node_line(k) : o->line;
}

static void obj_report(const struct obj *o, enum config_severity sev, const char *name,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void obj_report(const struct obj *o, enum config_severity sev, const char *name,
		       const char *fmt, ...)
{
	char key[KEY_LEN];
	va_list ap;

	key_path(o->path, name, key);
	va_start(ap, fmt);
	vreport(o->c, sev, obj_line(o, name), key, fmt, ap);
	va_end(ap);
}

#define obj_error(o, name, ...) obj_report(o, CONFIG_ERROR, name, __VA_ARGS__)
#define obj_warn(o, name, ...) obj_report(o, CONFIG_WARNING, name, __VA_ARGS__)

/* ---------------------------------------------------------------- typed values */

/*
 * The getters below return 1 when the key is set and valid (out written), 0 when it is
 * absent or empty (out untouched, so it keeps its default) and -1 when it is invalid
 * (reported; out untouched).
 */

/* what names the expected value in the message when a list or mapping is found. */
static int get_scalar(const struct obj *o, const char *name, const char *what, const char **out)
{
	yaml_node_t *v = obj_get(o, name);

	if (!v)
		return 0;
	if (v->type != YAML_SCALAR_NODE) {
		obj_error(o, name, "expected %s, got %s", what, kind_name(v));
		return -1;
	}
	if (strlen(scalar(v)) != v->data.scalar.length) {
		obj_error(o, name, "contains a NUL character (allowed: text without \\0)");
		return -1;
	}
	*out = scalar(v);
	return 1;
}

static int get_text(const struct obj *o, const char *name, const char **out)
{
	return get_scalar(o, name, "a single value", out);
}

static int get_strdup(const struct obj *o, const char *name, char **out)
{
	const char *t;
	int rc = get_text(o, name, &t);
	char *s;

	if (rc <= 0)
		return rc;
	s = strdup(t);
	if (!s) {
		o->c->nomem = true;
		return -1;
	}
	free(*out);
	*out = s;
	return 1;
}

/* Strict decimal or 0x hex, optional sign; saturates so huge numbers fail range checks. */
static bool parse_ll(const char *s, long long *out)
{
	unsigned long long v = 0;
	bool neg = false, over = false;
	unsigned base = 10;

	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned d;

		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && isxdigit((unsigned char)*s))
			d = (unsigned)(tolower((unsigned char)*s) - 'a' + 10);
		else
			return false;
		if (v > (ULLONG_MAX - d) / base)
			over = true;
		else
			v = v * base + d;
	}
	if (over || v > (unsigned long long)LLONG_MAX)
		v = (unsigned long long)LLONG_MAX;
	*out = neg ? -(long long)v : (long long)v;
	return true;
}

static int get_ll(const struct obj *o, const char *name, long long min, long long max,
		  const char *unit, long long *out)
{
	const char *t;
	long long v;
	int rc = get_scalar(o, name, "an integer", &t);

	if (rc <= 0)
		return rc;
	if (!parse_ll(t, &v)) {
		obj_error(o, name, "expected an integer, got '%.64s'", t);
		return -1;
	}
	if (v < min || v > max) {
		obj_error(o, name, "%.64s is out of range (allowed: %lld..%lld%s)", t, min, max,
			  unit);
		return -1;
	}
	*out = v;
	return 1;
}

static int get_int(const struct obj *o, const char *name, int min, int max, const char *unit,
		   int *out)
{
	long long v;
	int rc = get_ll(o, name, min, max, unit, &v);

	if (rc == 1)
		*out = (int)v;
	return rc;
}

static bool parse_bool(const char *t, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on"};
	static const char *const no[] = {"false", "no", "off"};

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (!strcasecmp(t, yes[i])) {
			*out = true;
			return true;
		}
		if (!strcasecmp(t, no[i])) {
			*out = false;
			return true;
		}
	}
	return false;
}

static int get_bool(const struct obj *o, const char *name, bool *out)
{
	const char *t;
	int rc = get_scalar(o, name, "true or false", &t);

	if (rc <= 0)
		return rc;
	if (!parse_bool(t, out)) {
		obj_error(o, name,
			  "expected true or false, got '%.64s' (allowed: true/false, yes/no, on/off)",
			  t);
		return -1;
	}
	return 1;
}

static const struct choice *find_choice(const char *t, const struct choice *tab, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcasecmp(t, tab[i].name))
			return &tab[i];
	return NULL;
}

static int get_choice(const struct obj *o, const char *name, const struct choice *tab, size_t n,
		      const char *allowed, int *out)
{
	const struct choice *ch;
	const char *t;
	int rc = get_text(o, name, &t);

	if (rc <= 0)
		return rc;
	ch = find_choice(t, tab, n);
	if (!ch) {
		obj_error(o, name, "'%.64s' is not valid (allowed: %s)", t, allowed);
		return -1;
	}
	*out = ch->value;
	return 1;
}

/* A mapping section or NULL (absent, or wrong kind: reported). */
static yaml_node_t *get_mapping(const struct obj *o, const char *name, const char *what)
{
	yaml_node_t *v = obj_get(o, name);

	if (v && v->type != YAML_MAPPING_NODE) {
		obj_error(o, name, "expected a mapping of %s, got %s", what, kind_name(v));
		return NULL;
	}
	return v;
}

/* ---------------------------------------------------------------- special values */

/* Joins a relative path to the configuration file's directory. */
static char *resolve_path(struct ctx *c, const char *p)
{
	if (p[0] == '/' || !c->dir)
		return strdup(p);
	return fmt_alloc("%s/%s", c->dir, p);
}

/*
 * Checks that a file (or directory, when dir) can be opened for reading now, so a wrong
 * path shows up at load time and not at the first TLS handshake hours later.
 */
static int check_readable(const char *path, bool dir)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | (dir ? O_DIRECTORY : 0));
	int err = 0;

	if (fd < 0)
		return errno;
	if (fstat(fd, &st) < 0)
		err = errno;
	else if (!dir && S_ISDIR(st.st_mode))
		err = EISDIR;
	close(fd);
	return err;
}

/* Reads a path key, resolves it and (when check) verifies it can be read. */
static int get_path(const struct obj *o, const char *name, bool check, bool dir, char **out)
{
	const char *t;
	char *p;
	int rc = get_text(o, name, &t);
	int err;

	if (rc <= 0)
		return rc;
	if (!*t) {
		obj_error(o, name, "must not be empty (remove the key to use the default)");
		return -1;
	}
	p = resolve_path(o->c, t);
	if (!p) {
		o->c->nomem = true;
		return -1;
	}
	if (check && (err = check_readable(p, dir)) != 0) {
		obj_error(o, name, "cannot read '%s': %s", p, strerror(err));
		free(p);
		return -1;
	}
	free(*out);
	*out = p;
	return 1;
}

static bool valid_hostname(const char *h)
{
	bool digits_dots = true;

	if (!*h || !isalnum((unsigned char)*h))
		return false;
	for (const char *p = h; *p; p++) {
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
			return false;
		if (!isdigit((unsigned char)*p) && *p != '.')
			digits_dots = false;
	}
	if (digits_dots) {
		struct in_addr a;

		return inet_pton(AF_INET, h, &a) == 1;
	}
	return true;
}

/*
 * Splits "host[:port]" or "[ipv6][:port]" into a malloc'd host and a port. On failure
 * writes the reason into err and returns MB_ERR_INVAL (or MB_ERR_NOMEM).
 */
static int parse_host_port(const char *text, int default_port, char **host, int *port, char *err,
			   size_t errlen)
{
	const char *hs, *he, *ps = NULL;
	long long p = default_port;
	char *h;

	if (text[0] == '[') {
		hs = text + 1;
		he = strchr(hs, ']');
		if (!he) {
			snprintf(err, errlen, "'%.64s' has no closing ']' (expected [ipv6]:port)",
				 text);
			return MB_ERR_INVAL;
		}
		if (he[1] == ':')
			ps = he + 2;
		else if (he[1]) {
			snprintf(err, errlen,
				 "'%.64s': unexpected text after ']' (expected [ipv6]:port)", text);
			return MB_ERR_INVAL;
		}
	} else {
		hs = text;
		he = strchr(text, ':');
		if (he && strchr(he + 1, ':')) {
			snprintf(err, errlen,
				 "'%.64s': write IPv6 addresses in brackets (expected [ipv6]:port)",
				 text);
			return MB_ERR_INVAL;
		}
		if (he)
			ps = he + 1;
		else
			he = text + strlen(text);
	}
	if (ps && (!*ps || !parse_ll(ps, &p) || !isdigit((unsigned char)*ps) ||
		   (ps[0] == '0' && (ps[1] == 'x' || ps[1] == 'X')))) {
		snprintf(err, errlen, "'%.64s': port '%.16s' is not a number (allowed: 1..65535)",
			 text, ps);
		return MB_ERR_INVAL;
	}
	if (p < 1 || p > 65535) {
		snprintf(err, errlen, "'%.64s': port %lld is out of range (allowed: 1..65535)",
			 text, p);
		return MB_ERR_INVAL;
	}
	h = strndup(hs, (size_t)(he - hs));
	if (!h)
		return MB_ERR_NOMEM;
	if (text[0] == '[') {
		struct in6_addr a6;

		if (inet_pton(AF_INET6, h, &a6) != 1) {
			snprintf(err, errlen, "'%.64s' is not a valid IPv6 address", h);
			free(h);
			return MB_ERR_INVAL;
		}
	} else if (!valid_hostname(h)) {
		snprintf(err, errlen,
			 "'%.64s' is not a valid host name or IPv4 address (allowed: letters, digits, '-', '.', '_')",
			 h);
		free(h);
		return MB_ERR_INVAL;
	}
	*host = h;
	*port = (int)p;
	return 0;
}

/*
 * Parses a period: a number of minutes ("10", "0.5") or a number with a unit ("500ms",
 * "30s", "10m", "10min", "1h"). Returns 0, -1 when it is not a period, -2 out of range.
 * Fixed-point arithmetic: 0.1 minute must be exactly 6000 ms.
 */
static int parse_period(const char *t, int64_t *out)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {
		{"", 60000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"min", 60000}, {"h", 3600000},
	};
	uint64_t ip = 0, frac = 0, scale = 1;
	bool digits = false, over = false;
	const char *p = t;
	size_t u;

	for (; isdigit((unsigned char)*p); p++) {
		digits = true;
		if (ip > 10000000000ULL)
			over = true;
		else
			ip = ip * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		p++;
		for (; isdigit((unsigned char)*p); p++) {
			digits = true;
			/* Digits beyond micro-units cannot change a millisecond result. */
			if (scale < 1000000) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				scale *= 10;
			}
		}
	}
	if (!digits)
		return -1;
	while (*p == ' ')
		p++;
	for (u = 0; u < ARRAY_SIZE(units); u++)
		if (!strcasecmp(p, units[u].unit))
			break;
	if (u == ARRAY_SIZE(units))
		return -1;
	if (over)
		return -2;
	uint64_t ms =
		ip * (uint64_t)units[u].ms + (frac * (uint64_t)units[u].ms + scale / 2) / scale;
	if (ms < PERIOD_MIN_MS || ms > PERIOD_MAX_MS)
		return -2;
	*out = (int64_t)ms;
	return 0;
}

/* ---------------------------------------------------------------- sections */

static void parse_gateway(struct ctx *c, const struct obj *top)
{
	yaml_node_t *map = get_mapping(top, "gateway", "gateway keys (imei)");
	struct obj o;
	const char *t;

	obj_scan(&o, c, map, "gateway", obj_line(top, "gateway"), gateway_keys,
		 ARRAY_SIZE(gateway_keys));
	if (get_text(&o, "imei", &t) == 1) {
		if (!*t) {
			obj_error(&o, "imei",
				  "must not be empty (remove the key to use the host name)");
		} else if (!(c->cfg->imei = strdup(t))) {
			c->nomem = true;
		} else {
			c->cfg->imei_configured = true;
		}
	}
}

static const struct serial_port_config *find_port(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->serial_port_count; i++)
		if (cfg->serial_ports[i].name && !strcmp(cfg->serial_ports[i].name, name))
			return &cfg->serial_ports[i];
	return NULL;
}

static void port_names(const struct config *cfg, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < cfg->serial_port_count && used < len; i++) {
		if (!cfg->serial_ports[i].name)
			continue;
		int w = snprintf(buf + used, len - used, "%s%s", used ? ", " : "",
				 cfg->serial_ports[i].name);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

/* silent_interval_ms (a number or "auto") and turnaround_ms: see docs/modbus.md. */
static void parse_port_timing(const struct obj *o, struct serial_port_config *p)
{
	const char *t;

	if (get_scalar(o, "silent_interval_ms", "a number of ms or auto", &t) == 1) {
		long long v;

		if (!strcasecmp(t, "auto"))
			p->silent_interval_ms = -1;
		else if (!parse_ll(t, &v))
			obj_error(o, "silent_interval_ms",
				  "expected a number of ms or auto, got '%.64s'", t);
		else
			get_int(o, "silent_interval_ms", 0, 10000, " ms, or auto",
				&p->silent_interval_ms);
	}
	get_int(o, "turnaround_ms", 0, 10000, " ms", &p->turnaround_ms);
}

static void parse_port(struct ctx *c, const yaml_node_t *map, const char *path,
		       struct serial_port_config *p)
{
	struct config *cfg = c->cfg;
	long long v;
	struct obj o;

	obj_scan(&o, c, map, path, node_line(map), serial_keys, ARRAY_SIZE(serial_keys));
	p->line = o.line;
	p->device_line = obj_line(&o, "device");
	snprintf(p->key, sizeof(p->key), "%s", path);
	p->baudrate = 9600;
	p->data_bits = 8;
	p->parity = 'N';
	p->stop_bits = 1;
	p->timeout_ms = 1000;
	p->byte_timeout_ms = 50;
	p->silent_interval_ms = -1;
	p->turnaround_ms = 5;

	if (get_strdup(&o, "name", &p->name) == 0) {
		obj_error(&o, "name",
			  "required (the name devices use to refer to this port, such as com2)");
	} else if (p->name && !*p->name) {
		obj_error(&o, "name", "must not be empty");
		free(p->name);
		p->name = NULL;
	} else if (p->name) {
		const struct serial_port_config *other = find_port(cfg, p->name);

		if (other) {
			obj_error(&o, "name",
				  "duplicate port name '%.64s' (first defined on line %d)", p->name,
				  other->line);
			free(p->name);
			p->name = NULL;
		}
	}

	if (get_strdup(&o, "device", &p->device) == 0) {
		obj_error(&o, "device", "required (the serial device, such as /dev/ttyS1)");
	} else if (p->device && !*p->device) {
		obj_error(&o, "device", "must not be empty (a serial device such as /dev/ttyS1)");
	} else if (p->device) {
		for (size_t i = 0; i < cfg->serial_port_count; i++) {
			const struct serial_port_config *q = &cfg->serial_ports[i];

			if (q->device && !strcmp(q->device, p->device)) {
				obj_error(&o, "device",
					  "'%.64s' is already used by port '%s' (line %d)",
					  p->device, q->name ? q->name : "?", q->line);
				break;
			}
		}
	}

	if (get_ll(&o, "baudrate", LLONG_MIN, LLONG_MAX, "", &v) == 1) {
		size_t i;
		char allowed[160];
		size_t used = 0;

		for (i = 0; i < ARRAY_SIZE(baudrates); i++)
			if (v == baudrates[i])
				break;
		if (i < ARRAY_SIZE(baudrates)) {
			p->baudrate = baudrates[i];
		} else {
			for (size_t j = 0; j < ARRAY_SIZE(baudrates); j++)
				used += (size_t)snprintf(allowed + used, sizeof(allowed) - used,
							 "%s%d", j ? ", " : "", baudrates[j]);
			obj_error(&o, "baudrate", "%lld is not a supported baud rate (allowed: %s)",
				  v, allowed);
		}
	}
	if (get_ll(&o, "data_bits", LLONG_MIN, LLONG_MAX, "", &v) == 1) {
		if (v == 7 || v == 8)
			p->data_bits = (int)v;
		else
			obj_error(&o, "data_bits", "%lld is not valid (allowed: 7, 8)", v);
	}
	int parity;
	if (get_choice(&o, "parity", parities, ARRAY_SIZE(parities), "none, even, odd, or N, E, O",
		       &parity) == 1)
		p->parity = (char)parity;
	if (get_ll(&o, "stop_bits", LLONG_MIN, LLONG_MAX, "", &v) == 1) {
		if (v == 1 || v == 2)
			p->stop_bits = (int)v;
		else
			obj_error(&o, "stop_bits", "%lld is not valid (allowed: 1, 2)", v);
	}
	get_int(&o, "timeout_ms", 1, 60000, " ms", &p->timeout_ms);
	get_int(&o, "byte_timeout_ms", 0, 10000, " ms", &p->byte_timeout_ms);
	parse_port_timing(&o, p);
}

static void parse_serial(struct ctx *c, const struct obj *top)
{
	yaml_node_t *v = obj_get(top, "serial");
	struct config *cfg = c->cfg;
	size_t n;

	if (!v)
		return;
	if (v->type == YAML_SCALAR_NODE) {
		obj_error(top, "serial", "expected a list of serial ports (- name: ...), got %s",
			  kind_name(v));
		return;
	}
	/* A single mapping is accepted as a list of one: the common one-port gateway. */
	n = v->type == YAML_MAPPING_NODE ? 1 : seq_len(v);
	if (n == 0)
		return;
	cfg->serial_ports = calloc(n, sizeof(*cfg->serial_ports));
	if (!cfg->serial_ports) {
		c->nomem = true;
		return;
	}
	if (v->type == YAML_MAPPING_NODE) {
		parse_port(c, v, "serial", &cfg->serial_ports[0]);
		cfg->serial_port_count = 1;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = seq_item(c, v, i);
		char path[KEY_LEN];

		snprintf(path, sizeof(path), "serial[%zu]", i);
		if (!item || item->type != YAML_MAPPING_NODE) {
			report(c, CONFIG_ERROR, node_line(item), path,
			       "expected a mapping (name, device, baudrate, ...), got %s",
			       item ? kind_name(item) : "nothing");
			continue;
		}
		/* Count grows as ports are parsed, so checks see only the earlier ports. */
		parse_port(c, item, path, &cfg->serial_ports[cfg->serial_port_count]);
		cfg->serial_port_count++;
	}
}

/*
 * Reads "start" or "count": the router's "1;10;55" text, a single integer or a YAML list
 * of integers. Returns 1 with a malloc'd array, 0 when absent (reported, as both are
 * required), -1 when invalid (reported).
 */
static int get_list(const struct obj *o, const char *name, const char *hint, uint32_t **vals,
		    size_t *n)
{
	yaml_node_t *v = obj_get(o, name);
	char err[160];

	if (!v) {
		obj_error(o, name, "required (%s)", hint);
		return 0;
	}
	if (v->type == YAML_SCALAR_NODE) {
		int rc = blocks_parse_list(scalar(v), vals, n, err, sizeof(err));

		if (rc == MB_ERR_NOMEM) {
			o->c->nomem = true;
			return -1;
		}
		if (rc < 0) {
			obj_error(o, name, "%s", err);
			return -1;
		}
		return 1;
	}
	if (v->type != YAML_SEQUENCE_NODE) {
		obj_error(o, name,
			  "expected a number, a list like \"1;10;55\" or a YAML list, got %s",
			  kind_name(v));
		return -1;
	}

	size_t len = seq_len(v);
	uint32_t *a;

	if (len == 0) {
		obj_error(o, name, "empty list (%s)", hint);
		return -1;
	}
	if (len > BLOCKS_MAX_ENTRIES) {
		obj_error(o, name, "%zu entries (allowed: at most %d)", len, BLOCKS_MAX_ENTRIES);
		return -1;
	}
	a = malloc(len * sizeof(*a));
	if (!a) {
		o->c->nomem = true;
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *item = seq_item(o->c, v, i);
		long long x;

		if (!item || item->type != YAML_SCALAR_NODE || !parse_ll(scalar(item), &x) ||
		    x < 0 || x > 65535) {
			char key[KEY_LEN];

			key_path(o->path, name, key);
			report(o->c, CONFIG_ERROR, node_line(item), key,
			       "entry %zu ('%.32s') is not a number (allowed: 0..65535)", i + 1,
			       item && item->type == YAML_SCALAR_NODE ? scalar(item)
			       : item                                 ? kind_name(item)
								      : "nothing");
			free(a);
			return -1;
		}
		a[i] = (uint32_t)x;
	}
	*vals = a;
	*n = len;
	return 1;
}

/*
 * Reads start and count into d->blocks. Each list's own problems are reported even when
 * the other list or the command is wrong, so one `check` shows every mistake; the checks
 * that need both lists and a valid command (blocks_build) run only when those are sound.
 */
static void parse_blocks(const struct obj *o, struct device_config *d, bool function_ok)
{
	uint32_t *starts = NULL, *counts = NULL;
	size_t ns = 0, nc = 0;
	char err[160];
	int rs, rcn, rc;

	rs = get_list(o, "start", "the first address of each block, such as 10 or \"1;10;55\"",
		      &starts, &ns);
	rcn = get_list(o, "count", "registers or bits per block, such as 5 or \"1;3;2\"", &counts,
		       &nc);
	bool lists_ok = rs == 1 && rcn == 1;
	for (size_t i = 0; rcn == 1 && i < nc; i++) {
		if (counts[i] == 0) {
			obj_error(o, "count", "entry %zu is 0 (allowed: 1..65535 %s)", i + 1,
				  function_ok && d->function <= 2 ? "bits" : "registers");
			lists_ok = false;
			break;
		}
	}
	if (rs == 1 && rcn == 1 && ns != nc) {
		obj_error(o, "count", "%zu %s but start has %zu", nc, nc == 1 ? "entry" : "entries",
			  ns);
		lists_ok = false;
	}
	if (lists_ok) {
		/* An invalid command has been reported; check the blocks as registers. */
		rc = blocks_build(starts, ns, counts, nc, function_ok ? d->function : 3, &d->blocks,
				  &d->block_count, err, sizeof(err));
		if (rc == MB_ERR_NOMEM) {
			o->c->nomem = true;
		} else if (rc < 0) {
			/* blocks_build names the list at fault at the start of its message. */
			if (!strncmp(err, "start: ", 7))
				obj_error(o, "start", "%s", err + 7);
			else if (!strncmp(err, "count: ", 7))
				obj_error(o, "count", "%s", err + 7);
			else
				obj_error(o, "count", "%s", err);
		}
	}
	free(starts);
	free(counts);
}

static void parse_address(const struct obj *o, struct device_config *d)
{
	const char *t;
	long long v;
	char err[256];
	int rc = get_scalar(o, "address", "a slave id or host:port", &t);

	if (rc == 0) {
		obj_error(o, "address",
			  "required (a slave id 1..247 for RTU, or host:port for Modbus TCP)");
		return;
	}
	if (rc < 0)
		return;
	d->address_text = strdup(t);
	if (!d->address_text) {
		o->c->nomem = true;
		return;
	}
	if (parse_ll(t, &v)) {
		d->transport = TRANSPORT_RTU;
		if (v < 1 || v > 247)
			obj_error(o, "address",
				  "%.64s is out of range (allowed: slave id 1..247, or host:port for Modbus TCP)",
				  t);
		else
			d->slave = (int)v;
		return;
	}
	d->transport = TRANSPORT_TCP;
	d->slave = 1;
	rc = parse_host_port(t, 502, &d->host, &d->port, err, sizeof(err));
	if (rc == MB_ERR_NOMEM)
		o->c->nomem = true;
	else if (rc < 0)
		obj_error(o, "address", "%s", err);
}

static void resolve_device_port(const struct obj *o, struct device_config *d,
				const struct serial_port_config *default_port, bool default_set)
{
	const struct config *cfg = o->c->cfg;
	char names[256];
	const char *t = NULL;
	int rc = get_text(o, "serial", &t);

	port_names(cfg, names, sizeof(names));
	if (rc < 0)
		return;
	if (rc == 1) {
		d->serial = find_port(cfg, t);
		if (d->serial)
			return;
		if (cfg->serial_port_count == 0)
			obj_error(o, "serial",
				  "unknown port '%.64s' (no serial ports are defined; add a 'serial' section)",
				  t);
		else
			obj_error(o, "serial", "unknown port '%.64s' (defined: %s)", t, names);
		return;
	}
	if (default_set) {
		/* modbus.serial was set; if it was wrong, that has been reported already. */
		d->serial = default_port;
		return;
	}
	if (cfg->serial_port_count == 1) {
		d->serial = &cfg->serial_ports[0];
		return;
	}
	if (cfg->serial_port_count == 0)
		obj_error(o, "serial",
			  "no serial ports are defined; an RTU device needs one (add a 'serial' section, or use host:port for Modbus TCP)");
	else
		obj_error(o, "serial",
			  "required when several serial ports are defined (defined: %s; or set modbus.serial)",
			  names);
}

/*
 * The keys of issue 5 (docs/modbus.md): byte_order, and the checks that tie type to the
 * command and the block sizes; optimize, max_per_read, retries, backoff_max.
 */
static void parse_device_reads(const struct obj *o, struct device_config *d, bool function_ok)
{
	bool bits = function_ok && (d->function == 1 || d->function == 2);
	unsigned width = decode_width(d->type);
	unsigned limit = bits ? BLOCKS_MAX_BITS : BLOCKS_MAX_REGISTERS;
	int order;
	const char *t;

	if (bits && d->type != REG_TYPE_WORD)
		obj_error(o, "type",
			  "'%s' is for registers, but command 0x%02X reads bits (allowed with 0x01 and 0x02: word)",
			  decode_type_name(d->type), (unsigned)d->function);
	if (get_choice(o, "byte_order", reg_orders, ARRAY_SIZE(reg_orders),
		       "ABCD, CDAB, BADC, DCBA", &order) == 1) {
		if (bits)
			obj_error(o, "byte_order",
				  "only for register commands 0x03 and 0x04 (command 0x%02X reads bits)",
				  (unsigned)d->function);
		else
			d->order = (enum reg_order)order;
	}
	/* A value must not straddle two blocks: each block holds whole values. */
	for (size_t i = 0; !bits && width > 1 && i < d->block_count; i++) {
		if (d->blocks[i].count % width) {
			obj_error(o, "count",
				  "entry %zu (%u) is not a multiple of %u registers, the size of one %s value",
				  i + 1, (unsigned)d->blocks[i].count, width,
				  decode_type_name(d->type));
			break;
		}
	}

	get_bool(o, "optimize", &d->optimize);
	get_int(o, "max_per_read", 1, function_ok ? (int)limit : BLOCKS_MAX_BITS,
		bits ? " bits" : " registers", &d->max_per_read);
	get_int(o, "retries", 0, 10, "", &d->retries);
	if (get_scalar(o, "backoff_max", "a period such as 60s or 5m", &t) == 1) {
		int rc = parse_period(t, &d->backoff_max_ms);
		if (rc == -1)
			obj_error(o, "backoff_max",
				  "'%.64s' is not a period (allowed: minutes as a number such as 5, or a number with a unit: 30s, 10m, 1h)",
				  t);
		else if (rc == -2)
			obj_error(o, "backoff_max",
				  "'%.64s' is out of range (allowed: 100ms .. 7 days)", t);
	}
}

struct device_defaults {
	const struct serial_port_config *port; /* modbus.serial, resolved */
	bool port_set;                         /* modbus.serial was given */
	bool logger;                           /* modbus.logger */
};

static void parse_device(struct ctx *c, const yaml_node_t *map, const char *path,
			 const struct device_defaults *def, struct device_config *d)
{
	struct config *cfg = c->cfg;
	bool function_ok = true;
	struct obj o;
	const char *t;
	long long v;
	int rc;

	obj_scan(&o, c, map, path, node_line(map), device_keys, ARRAY_SIZE(device_keys));
	d->line = o.line;
	d->function = 3;
	d->type = REG_TYPE_WORD;
	d->period_ms = 60000;
	d->logger = def->logger;
	d->timeout_ms = 1000;
	d->order = REG_ORDER_ABCD;
	d->optimize = true;
	d->max_per_read = 0;
	d->retries = 1;
	d->backoff_max_ms = 60000;

	rc = get_text(&o, "id", &t);
	if (rc == 0) {
		obj_error(&o, "id", "required (the device name sent as \"ID\", 1..%d characters)",
			  ID_MAX_LEN);
	} else if (rc == 1 && !*t) {
		obj_error(&o, "id", "must not be empty (allowed: 1..%d characters)", ID_MAX_LEN);
	} else if (rc == 1 && strlen(t) > ID_MAX_LEN) {
		obj_error(&o, "id", "'%.32s...' has %zu characters (allowed: 1..%d)", t, strlen(t),
			  ID_MAX_LEN);
	} else if (rc == 1) {
		const struct device_config *other = config_find_device(cfg, t);

		if (other)
			obj_error(&o, "id", "duplicate id '%s' (first used on line %d)", t,
				  other->line);
		else if (!(d->id = strdup(t)))
			c->nomem = true;
	}

	parse_address(&o, d);
	bool tcp = d->address_text && d->transport == TRANSPORT_TCP;
	bool rtu = d->address_text && d->transport == TRANSPORT_RTU;

	if (get_ll(&o, "unit_id", 0, 255, "", &v) == 1) {
		if (rtu)
			obj_error(&o, "unit_id",
				  "only for Modbus TCP devices (an RTU device's address is its slave id)");
		else
			d->slave = (int)v;
	}

	if (tcp && obj_get(&o, "serial"))
		obj_error(&o, "serial", "only for RTU devices (address '%.64s' is Modbus TCP)",
			  d->address_text);
	else if (rtu)
		resolve_device_port(&o, d, def->port, def->port_set);

	if (get_int(&o, "timeout_ms", 1, 60000, " ms", &d->timeout_ms) == 1 && rtu)
		obj_error(&o, "timeout_ms",
			  "only for Modbus TCP devices; set timeout_ms on the serial port");
	if (rtu && d->serial)
		d->timeout_ms = d->serial->timeout_ms;

	rc = get_scalar(&o, "command", "a function code such as 0x03", &t);
	if (rc == 1) {
		if (!parse_ll(t, &v)) {
			obj_error(&o, "command",
				  "expected a function code such as 0x03, got '%.64s' (allowed: 0x01, 0x02, 0x03, 0x04)",
				  t);
			function_ok = false;
		} else if (v < 1 || v > 4) {
			if (v >= 0 && v <= 0xff)
				obj_error(&o, "command",
					  "0x%02llX is not a read command (allowed: %s)",
					  (unsigned long long)v, READ_COMMANDS);
			else
				obj_error(&o, "command",
					  "%.64s is not a read command (allowed: %s)", t,
					  READ_COMMANDS);
			function_ok = false;
		} else {
			d->function = (int)v;
		}
	} else if (rc < 0) {
		function_ok = false;
	}

	parse_blocks(&o, d, function_ok);

	if (get_text(&o, "type", &t) == 1) {
		const struct choice *ch = find_choice(t, reg_types, ARRAY_SIZE(reg_types));

		if (ch) {
			d->type = (enum reg_type)ch->value;
		} else {
			char allowed[128];
			const char *names[ARRAY_SIZE(reg_types)];

			for (size_t i = 0; i < ARRAY_SIZE(reg_types); i++)
				names[i] = reg_types[i].name;
			join_names(names, ARRAY_SIZE(reg_types), allowed, sizeof(allowed));
			obj_error(&o, "type", "'%.64s' is not supported (allowed: %s)", t, allowed);
		}
	}

	if (get_scalar(&o, "period", "a period such as 10, 30s or 500ms", &t) == 1) {
		rc = parse_period(t, &d->period_ms);
		if (rc == -1)
			obj_error(&o, "period",
				  "'%.64s' is not a period (allowed: minutes as a number such as 10 or 0.5, or a number with a unit: 500ms, 30s, 10m, 1h)",
				  t);
		else if (rc == -2)
			obj_error(&o, "period",
				  "'%.64s' is out of range (allowed: 100ms .. 7 days)", t);
	}

	get_bool(&o, "logger", &d->logger);
	/* An unknown type leaves the default (word), which no type check objects to: the
	 * other read keys are still checked, so every problem is reported at once. */
	parse_device_reads(&o, d, function_ok);
}

static void parse_modbus(struct ctx *c, const struct obj *top)
{
	yaml_node_t *map =
		get_mapping(top, "modbus", "Modbus keys (enabled, serial, logger, devices)");
	struct config *cfg = c->cfg;
	struct device_defaults def = {NULL, false, true};
	yaml_node_t *devs;
	struct obj o;
	const char *t;
	size_t n;

	obj_scan(&o, c, map, "modbus", obj_line(top, "modbus"), modbus_keys,
		 ARRAY_SIZE(modbus_keys));
	get_bool(&o, "enabled", &cfg->modbus_enabled);
	get_bool(&o, "logger", &def.logger);
	if (get_text(&o, "serial", &t) == 1) {
		char names[256];

		def.port_set = true;
		def.port = find_port(cfg, t);
		port_names(cfg, names, sizeof(names));
		if (!def.port && cfg->serial_port_count == 0)
			obj_error(&o, "serial",
				  "unknown port '%.64s' (no serial ports are defined; add a 'serial' section)",
				  t);
		else if (!def.port)
			obj_error(&o, "serial", "unknown port '%.64s' (defined: %s)", t, names);
	}

	devs = obj_get(&o, "devices");
	if (devs && devs->type != YAML_SEQUENCE_NODE) {
		obj_error(&o, "devices", "expected a list of devices (- id: ...), got %s",
			  kind_name(devs));
		return;
	}
	n = devs ? seq_len(devs) : 0;
	if (n == 0) {
		obj_warn(&o, "devices", "no devices configured");
		return;
	}
	cfg->devices = calloc(n, sizeof(*cfg->devices));
	if (!cfg->devices) {
		c->nomem = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = seq_item(c, devs, i);
		char path[KEY_LEN];

		snprintf(path, sizeof(path), "modbus.devices[%zu]", i);
		if (!item || item->type != YAML_MAPPING_NODE) {
			report(c, CONFIG_ERROR, node_line(item), path,
			       "expected a mapping (id, address, command, start, count, ...), got %s",
			       item ? kind_name(item) : "nothing");
			continue;
		}
		parse_device(c, item, path, &def, &cfg->devices[cfg->device_count]);
		cfg->device_count++;
	}
}

static void parse_logger(struct ctx *c, const struct obj *top)
{
	yaml_node_t *map = get_mapping(top, "logger", "logger keys (id, send_mode, topic, ...)");
	struct logger_config *l = &c->cfg->logger;
	struct obj o;
	const char *t;
	bool b;
	int v;

	obj_scan(&o, c, map, "logger", obj_line(top, "logger"), logger_keys,
		 ARRAY_SIZE(logger_keys));
	get_strdup(&o, "id", &l->id);
	if (get_choice(&o, "send_mode", send_modes, ARRAY_SIZE(send_modes), "fifo, lifo", &v) == 1)
		l->send_mode = (enum send_mode)v;
	if (get_choice(&o, "time_format", time_formats, ARRAY_SIZE(time_formats),
		       "iso8601, iso, unix", &v) == 1)
		l->time_format = (enum time_format)v;
	get_bool(&o, "array", &l->array);
	get_int(&o, "array_max_count", 1, 1000, " messages", &l->array_max_count);
	long long bytes;
	if (get_ll(&o, "array_max_bytes", 1024, 16777216, " bytes", &bytes) == 1)
		l->array_max_bytes = (size_t)bytes;
	get_bool(&o, "error_messages", &l->error_messages);
	get_path(&o, "store", false, false, &l->store_path);

	if (get_text(&o, "mode", &t) == 1 && strcasecmp(t, "mqtt") != 0) {
		if (!strcasecmp(t, "http") || !strcasecmp(t, "ftp"))
			obj_error(&o, "mode", "'%s' is not supported yet (allowed: mqtt)", t);
		else
			obj_error(&o, "mode", "'%.64s' is not valid (allowed: mqtt)", t);
	}

	if (get_text(&o, "topic", &t) == 1) {
		const char *why = topic_publish_problem(t);

		char *topic;

		if (*why) {
			obj_error(&o, "topic", "%s", why);
		} else if (!(topic = strdup(t))) {
			c->nomem = true;
		} else {
			free(l->topic);
			l->topic = topic;
		}
	}

	if (get_bool(&o, "use_script", &b) == 1 && b)
		obj_error(&o, "use_script",
			  "JSON transformer scripts are not supported yet (allowed: false)");
	get_int(&o, "inflight_window", 1, 1000, "", &l->inflight_window);

	/* Bounds of the store and of the memory buffer used while the store fails. */
	long long n;
	if (get_ll(&o, "max_messages", 0, 1000000000LL, " readings", &n) == 1)
		l->max_messages = n;
	if (get_ll(&o, "max_bytes", 0, 1LL << 40, " bytes", &n) == 1)
		l->max_bytes = n;
	if (get_choice(&o, "full_policy", full_policies, ARRAY_SIZE(full_policies),
		       "drop_oldest, drop_newest", &v) == 1)
		l->full_policy = (enum store_full_policy)v;
	if (get_ll(&o, "memory_max_messages", 1, 10000000LL, " readings", &n) == 1)
		l->memory_max_messages = n;
	if (get_ll(&o, "memory_max_bytes", 1024, 1LL << 32, " bytes", &n) == 1)
		l->memory_max_bytes = n;
}

static void parse_broker(const struct obj *o, struct mqtt_config *m, bool *tls_known)
{
	static const struct {
		const char *scheme;
		bool tls;
		int port;
	} schemes[] = {
		{"tcp", false, 1883},
		{"mqtt", false, 1883},
		{"ssl", true, 8883},
		{"mqtts", true, 8883},
	};
	const char *t, *sep, *rest;
	char err[256], *hostport = NULL;
	size_t i, len;
	int rc = get_scalar(o, "broker", "a URL such as ssl://broker.example.com:8883", &t);

	if (rc == 0 && m->enabled)
		obj_error(o, "broker",
			  "required when mqtt is enabled (a URL such as ssl://broker.example.com:8883)");
	if (rc <= 0)
		return;
	sep = strstr(t, "://");
	if (!sep) {
		obj_error(o, "broker",
			  "'%.64s' is not a URL (expected scheme://host[:port], such as ssl://broker.example.com:8883)",
			  t);
		return;
	}
	for (i = 0; i < ARRAY_SIZE(schemes); i++)
		if (strlen(schemes[i].scheme) == (size_t)(sep - t) &&
		    !strncasecmp(t, schemes[i].scheme, (size_t)(sep - t)))
			break;
	if (i == ARRAY_SIZE(schemes)) {
		obj_error(o, "broker",
			  "'%.*s' is not a supported scheme (allowed: tcp://, mqtt://, ssl://, mqtts://)",
			  (int)(sep - t > 16 ? 16 : sep - t), t);
		return;
	}
	*tls_known = true;
	m->tls = schemes[i].tls;
	rest = sep + 3;
	len = strlen(rest);
	if (len && rest[len - 1] == '/')
		len--; /* "tcp://host:1883/" is a common way to write it */
	if (memchr(rest, '/', len)) {
		obj_error(o, "broker",
			  "'%.64s': a path is not allowed (expected scheme://host[:port])", t);
		return;
	}
	hostport = strndup(rest, len);
	if (!hostport) {
		o->c->nomem = true;
		return;
	}
	rc = parse_host_port(hostport, schemes[i].port, &m->host, &m->port, err, sizeof(err));
	if (rc == 0 && !(m->broker = strdup(t)))
		rc = MB_ERR_NOMEM;
	if (rc == MB_ERR_NOMEM)
		o->c->nomem = true;
	else if (rc < 0)
		obj_error(o, "broker", "%s", err);
	free(hostport);
}

static void parse_at_topics(struct ctx *c, const struct obj *o, struct mqtt_config *m)
{
	yaml_node_t *v = obj_get(o, "at_topics");
	size_t n;

	if (!v)
		return;
	if (v->type != YAML_SEQUENCE_NODE) {
		obj_error(o, "at_topics", "expected a list of {topic, response} pairs, got %s",
			  kind_name(v));
		return;
	}
	int response_line[CONFIG_MAX_AT_TOPICS] = {0}, topic_line[CONFIG_MAX_AT_TOPICS] = {0};

	n = seq_len(v);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = seq_item(c, v, i);
		struct at_topic_pair pair = {NULL, NULL};
		char path[KEY_LEN];
		struct obj p;
		const char *t, *why;

		snprintf(path, sizeof(path), "mqtt.at_topics[%zu]", i);
		if (i >= CONFIG_MAX_AT_TOPICS) {
			report(c, CONFIG_ERROR, node_line(item), path,
			       "too many pairs (allowed: at most %d)", CONFIG_MAX_AT_TOPICS);
			break;
		}
		if (!item || item->type != YAML_MAPPING_NODE) {
			report(c, CONFIG_ERROR, node_line(item), path,
			       "expected a mapping {topic, response}, got %s",
			       item ? kind_name(item) : "nothing");
			continue;
		}
		obj_scan(&p, c, item, path, node_line(item), at_topic_keys,
			 ARRAY_SIZE(at_topic_keys));
		int rt = get_text(&p, "topic", &t);
		if (rt == 0) {
			obj_error(&p, "topic",
				  "required (the topic to subscribe to, such as [IMEI]/AT)");
		} else if (rt == 1 && *(why = topic_filter_problem(t))) {
			obj_error(&p, "topic", "%s", why);
		} else if (rt == 1 && !(pair.topic = strdup(t))) {
			c->nomem = true;
		}
		int rr = get_text(&p, "response", &t);
		if (rr == 0) {
			obj_error(&p, "response",
				  "required (the topic for answers, such as [IMEI]/ATR)");
		} else if (rr == 1 && *(why = topic_publish_problem(t))) {
			obj_error(&p, "response", "%s", why);
		} else if (rr == 1 && !(pair.response = strdup(t))) {
			c->nomem = true;
		}
		if (pair.topic && pair.response) {
			response_line[m->at_topic_count] = obj_line(&p, "response");
			topic_line[m->at_topic_count] = obj_line(&p, "topic");
			m->at_topics[m->at_topic_count++] = pair;
		} else {
			free(pair.topic);
			free(pair.response);
		}
	}
	/* An answer landing on a command topic would be taken for a command: a loop. */
	for (size_t i = 0; i < m->at_topic_count; i++) {
		for (size_t j = 0; j < m->at_topic_count; j++) {
			char path[KEY_LEN];

			if (!topic_matches(m->at_topics[j].topic, m->at_topics[i].response))
				continue;
			snprintf(path, sizeof(path), "mqtt.at_topics[%zu].response", i);
			report(c, CONFIG_ERROR, response_line[i], path,
			       "'%.64s' is matched by the command topic '%.64s': replies would be taken for commands (use a topic outside it, such as [IMEI]/ATR)",
			       m->at_topics[i].response, m->at_topics[j].topic);
			break;
		}
		const char *logger_topic = c->cfg->logger.topic;
		if (logger_topic && topic_matches(m->at_topics[i].topic, logger_topic)) {
			char path[KEY_LEN];

			snprintf(path, sizeof(path), "mqtt.at_topics[%zu].topic", i);
			report(c, CONFIG_ERROR, topic_line[i], path,
			       "'%.64s' matches the logger topic '%.64s': readings would be taken for commands (use a topic such as [IMEI]/AT)",
			       m->at_topics[i].topic, logger_topic);
		}
	}
}

/* Reads mqtt.status_topic; blank disables it. Checked against the AT topics. */
static void parse_status_topic(const struct obj *o, struct mqtt_config *m)
{
	const char *t, *why;
	char *topic;

	if (get_text(o, "status_topic", &t) == 1) {
		if (!*t) {
			free(m->status_topic);
			m->status_topic = NULL;
		} else if (*(why = topic_publish_problem(t))) {
			obj_error(o, "status_topic", "%s", why);
			return;
		} else if (!(topic = strdup(t))) {
			o->c->nomem = true;
		} else {
			free(m->status_topic);
			m->status_topic = topic;
		}
	}
	for (size_t j = 0; m->status_topic && j < m->at_topic_count; j++) {
		if (topic_matches(m->at_topics[j].topic, m->status_topic)) {
			obj_error(o, "status_topic",
				  "'%.64s' is matched by the command topic '%.64s' (use a topic outside it)",
				  m->status_topic, m->at_topics[j].topic);
			break;
		}
	}
}

/*
 * The TLS files must hold what their keys say: a key that does not belong to the
 * certificate, or a CA file that is not a certificate, would otherwise only show as an
 * OpenSSL error at every connection attempt (docs/operations.md: start-up refuses them).
 */
static void check_tls_files(const struct obj *o, const struct mqtt_config *m, bool ca, bool cert,
			    bool key)
{
	char why[512];

	if (ca && certinfo_check_cert_file(m->ca_file, why, sizeof(why)) != 0)
		obj_error(o, "ca_file", "%s", why);
	if (cert && certinfo_check_cert_file(m->cert_file, why, sizeof(why)) != 0) {
		obj_error(o, "cert_file", "%s", why);
		cert = false;
	}
	if (key && certinfo_check_key_file(m->key_file, why, sizeof(why)) != 0) {
		obj_error(o, "key_file", "%s", why);
		key = false;
	}
	if (cert && key &&
	    certinfo_check_key_pair(m->cert_file, m->key_file, why, sizeof(why)) != 0)
		obj_error(o, "key_file", "%s (cert_file, line %d)", why, obj_line(o, "cert_file"));
}

static void parse_mqtt(struct ctx *c, const struct obj *top)
{
	static const char *const tls_keys[] = {"ca_file", "ca_path", "cert_file", "key_file"};
	yaml_node_t *map = get_mapping(top, "mqtt", "MQTT keys (enabled, broker, ...)");
	struct mqtt_config *m = &c->cfg->mqtt;
	bool tls_known = false, checks;
	struct obj o;
	const char *t;

	obj_scan(&o, c, map, "mqtt", obj_line(top, "mqtt"), mqtt_keys, ARRAY_SIZE(mqtt_keys));
	get_bool(&o, "enabled", &m->enabled);
	parse_broker(&o, m, &tls_known);

	/* A blank user name or password is the router's "not set". */
	if (get_text(&o, "username", &t) == 1 && *t && !(m->username = strdup(t)))
		c->nomem = true;
	if (get_text(&o, "password", &t) == 1 && *t) {
		if (!m->username)
			obj_error(&o, "password",
				  "set without username (set username too, or remove password)");
		else if (!(m->password = strdup(t)))
			c->nomem = true;
	}
	if (get_text(&o, "client_id", &t) == 1) {
		char *id;

		if (strlen(t) > TOPIC_MAX_LEN) {
			obj_error(&o, "client_id", "is longer than 65535 bytes");
		} else if (!(id = strdup(t))) {
			c->nomem = true;
		} else {
			free(m->client_id);
			m->client_id = id;
		}
	}
	get_int(&o, "qos", 0, 2, "", &m->qos);
	get_int(&o, "keepalive", 30, 3600, " seconds", &m->keepalive_s);
	if (get_bool(&o, "persistence", &m->persistence) == 1 && m->persistence && m->client_id &&
	    !*m->client_id)
		obj_error(&o, "persistence", "true requires a non-empty client_id");
	get_bool(&o, "allow_all_certificates", &m->allow_all_certificates);

	if (tls_known && !m->tls) {
		/* Not an error: switching the URL back to ssl:// should need no other edit. */
		for (size_t i = 0; i < ARRAY_SIZE(tls_keys); i++)
			if (obj_get(&o, tls_keys[i]))
				obj_warn(&o, tls_keys[i], "ignored: the broker URL is not ssl://");
		if (m->allow_all_certificates)
			obj_warn(&o, "allow_all_certificates",
				 "ignored: the broker URL is not ssl://");
		m->allow_all_certificates = false;
		checks = false;
	} else {
		checks = true;
		if (m->allow_all_certificates)
			obj_warn(&o, "allow_all_certificates",
				 "TLS certificate and host name verification are disabled; use only for tests");
	}
	int ca = get_path(&o, "ca_file", checks, false, &m->ca_file);
	get_path(&o, "ca_path", checks, true, &m->ca_path);
	int cert = get_path(&o, "cert_file", checks, false, &m->cert_file);
	int key = get_path(&o, "key_file", checks, false, &m->key_file);
	if (checks)
		check_tls_files(&o, m, ca == 1, cert == 1, key == 1);
	if (checks && obj_get(&o, "cert_file") && !obj_get(&o, "key_file"))
		obj_error(&o, "cert_file",
			  "set without key_file (a client certificate needs its private key)");
	if (checks && obj_get(&o, "key_file") && !obj_get(&o, "cert_file"))
		obj_error(&o, "key_file",
			  "set without cert_file (a private key needs its client certificate)");
	if (!checks) {
		/* Ignored means ignored: the MQTT module must not half-apply them. */
		free(m->ca_file);
		free(m->ca_path);
		free(m->cert_file);
		free(m->key_file);
		m->ca_file = m->ca_path = m->cert_file = m->key_file = NULL;
	}

	parse_at_topics(c, &o, m);
	parse_status_topic(&o, m);
}

static void parse_remote(struct ctx *c, const struct obj *top)
{
	yaml_node_t *map =
		get_mapping(top, "remote", "remote command permissions (allow_writes, ...)");
	struct remote_config *r = &c->cfg->remote;
	struct obj o;

	obj_scan(&o, c, map, "remote", obj_line(top, "remote"), remote_keys,
		 ARRAY_SIZE(remote_keys));
	get_bool(&o, "allow_writes", &r->allow_writes);
	get_bool(&o, "allow_setparam", &r->allow_setparam);
	get_bool(&o, "allow_reboot", &r->allow_reboot);
	get_bool(&o, "allow_modem_passthrough", &r->allow_modem_passthrough);
}

static void parse_modem(struct ctx *c, const struct obj *top)
{
	yaml_node_t *map = get_mapping(top, "modem", "modem keys (device, baudrate, timeout_ms)");
	struct modem_config *m = &c->cfg->modem;
	struct obj o;
	long long v;

	obj_scan(&o, c, map, "modem", obj_line(top, "modem"), modem_keys, ARRAY_SIZE(modem_keys));
	m->line = o.line;
	if (!map)
		return;
	if (get_strdup(&o, "device", &m->device) == 0)
		obj_error(&o, "device",
			  "required (the modem's AT port, such as /dev/ttyUSB2; remove the modem section when there is none)");
	else if (m->device && !*m->device)
		obj_error(&o, "device",
			  "must not be empty (the modem's AT port, such as /dev/ttyUSB2)");
	for (size_t i = 0; m->device && i < c->cfg->serial_port_count; i++) {
		const struct serial_port_config *p = &c->cfg->serial_ports[i];

		if (p->device && !strcmp(p->device, m->device)) {
			obj_error(&o, "device",
				  "'%.64s' is already used by serial port '%s' (line %d)",
				  m->device, p->name ? p->name : "?", p->line);
			break;
		}
	}
	if (get_ll(&o, "baudrate", LLONG_MIN, LLONG_MAX, "", &v) == 1) {
		size_t i;

		for (i = 0; i < ARRAY_SIZE(baudrates); i++)
			if (v == baudrates[i])
				break;
		if (i < ARRAY_SIZE(baudrates))
			m->baudrate = baudrates[i];
		else
			obj_error(&o, "baudrate",
				  "%lld is not a supported baud rate (allowed: 1200 .. 921600, such as 9600 or 115200)",
				  v);
	}
	get_int(&o, "timeout_ms", 100, 300000, " ms", &m->timeout_ms);
}

/* ---------------------------------------------------------------- load */

static int set_defaults(struct config *cfg)
{
	cfg->modbus_enabled = true;
	cfg->logger.send_mode = SEND_FIFO;
	cfg->logger.time_format = TIME_ISO8601;
	cfg->logger.array_max_count = 50;
	cfg->logger.array_max_bytes = 65536;
	cfg->logger.error_messages = true;
	cfg->logger.inflight_window = 256;
	cfg->logger.max_messages = 1000000;
	cfg->logger.max_bytes = 256LL * 1024 * 1024;
	cfg->logger.full_policy = STORE_DROP_OLDEST;
	cfg->logger.memory_max_messages = 10000;
	cfg->logger.memory_max_bytes = 8LL * 1024 * 1024;
	cfg->mqtt.enabled = true;
	cfg->mqtt.qos = 1;
	cfg->mqtt.keepalive_s = 60;
	cfg->logger.id = strdup("");
	cfg->logger.store_path = strdup("/var/lib/modbridge/store.db");
	cfg->logger.topic = strdup("[IMEI]/logger");
	cfg->mqtt.client_id = strdup("[IMEI]");
	cfg->mqtt.status_topic = strdup("[IMEI]/status");
	cfg->modem.baudrate = 115200;
	cfg->modem.timeout_ms = 5000;
	if (!cfg->logger.id || !cfg->logger.store_path || !cfg->logger.topic ||
	    !cfg->mqtt.client_id || !cfg->mqtt.status_topic)
		return MB_ERR_NOMEM;
	return 0;
}

static int set_hostname(struct config *cfg)
{
	char host[256];

	if (gethostname(host, sizeof(host)) < 0 || !host[0])
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	cfg->imei = strdup(host);
	return cfg->imei ? 0 : MB_ERR_NOMEM;
}

/* Reads the whole file; on failure reports "path: cannot open: reason". */
static int read_file(struct ctx *c, unsigned char **buf, size_t *len)
{
	FILE *f = fopen(c->path, "rb");
	unsigned char *b = NULL;
	size_t n = 0, cap = 0;
	int err;

	if (!f) {
		err = errno;
		goto fail;
	}
	for (;;) {
		if (n == cap) {
			unsigned char *nb;

			if (cap >= (size_t)MAX_FILE_SIZE) {
				fclose(f);
				free(b);
				push_diag(c, CONFIG_ERROR, 0,
					  fmt_alloc("%s: cannot open: larger than %ld bytes",
						    c->path, MAX_FILE_SIZE));
				return MB_ERR_IO;
			}
			cap = cap ? cap * 2 : 4096;
			nb = realloc(b, cap);
			if (!nb) {
				fclose(f);
				free(b);
				return MB_ERR_NOMEM;
			}
			b = nb;
		}
		size_t r = fread(b + n, 1, cap - n, f);

		n += r;
		if (r == 0) {
			if (ferror(f)) {
				err = errno ? errno : EIO;
				fclose(f);
				free(b);
				goto fail;
			}
			break;
		}
	}
	fclose(f);
	*buf = b;
	*len = n;
	return 0;

fail:
	push_diag(c, CONFIG_ERROR, 0, fmt_alloc("%s: cannot open: %s", c->path, strerror(err)));
	return MB_ERR_IO;
}

static int line_of_offset(const unsigned char *buf, size_t len, size_t off)
{
	int line = 1;

	for (size_t i = 0; i < off && i < len; i++)
		if (buf[i] == '\n')
			line++;
	return line;
}

static void report_yaml_error(struct ctx *c, const yaml_parser_t *parser, const unsigned char *buf,
			      size_t len)
{
	const char *problem = parser->problem ? parser->problem : "unknown problem";

	if (parser->error == YAML_READER_ERROR) {
		/* Encoding errors carry a byte offset instead of a mark. */
		int line = line_of_offset(buf, len, parser->problem_offset);

		report(c, CONFIG_ERROR, line, NULL, "YAML syntax error: %s (byte %zu)", problem,
		       parser->problem_offset);
		return;
	}
	report(c, CONFIG_ERROR, (int)parser->problem_mark.line + 1, NULL,
	       "YAML syntax error: %s (column %d)", problem, (int)parser->problem_mark.column + 1);
}

static void parse_document(struct ctx *c)
{
	yaml_node_t *root = yaml_document_get_root_node(c->doc);
	struct obj top;

	if (root && is_null(root))
		root = NULL;
	if (root && root->type != YAML_MAPPING_NODE) {
		/* Nothing below would make sense; one message is enough. */
		report(c, CONFIG_ERROR, node_line(root), "top level",
		       "expected a mapping of sections (gateway, serial, modbus, logger, mqtt, remote, modem), got %s",
		       kind_name(root));
		return;
	}
	obj_scan(&top, c, root, "", 1, top_keys, ARRAY_SIZE(top_keys));
	parse_gateway(c, &top);
	parse_serial(c, &top);
	parse_modbus(c, &top);
	parse_logger(c, &top);
	parse_mqtt(c, &top);
	parse_remote(c, &top);
	parse_modem(c, &top);
}

static int load(struct ctx *c, const unsigned char *buf, size_t len)
{
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	int rc = 0;

	if (!yaml_parser_initialize(&parser))
		return MB_ERR_NOMEM;
	yaml_parser_set_input_string(&parser, buf, len);
	if (!yaml_parser_load(&parser, &doc)) {
		if (parser.error == YAML_MEMORY_ERROR)
			rc = MB_ERR_NOMEM;
		else
			report_yaml_error(c, &parser, buf, len);
		yaml_parser_delete(&parser);
		return rc;
	}
	c->doc = &doc;
	parse_document(c);
	c->doc = NULL;

	/* A second document would be silently ignored; say so instead. */
	if (!yaml_parser_load(&parser, &extra)) {
		if (parser.error == YAML_MEMORY_ERROR)
			rc = MB_ERR_NOMEM;
		else
			report_yaml_error(c, &parser, buf, len);
	} else {
		yaml_node_t *r = yaml_document_get_root_node(&extra);

		if (r)
			report(c, CONFIG_ERROR, node_line(r), NULL,
			       "only one YAML document is allowed (remove the '---' line)");
		yaml_document_delete(&extra);
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return rc;
}

int config_load(const char *path, struct config **out, struct config_diags *diags)
{
	struct ctx c = {0};
	unsigned char *buf = NULL;
	struct config *cfg = NULL;
	const char *slash;
	size_t len = 0;
	int rc;

	if (!path || !out || !diags)
		return MB_ERR_INVAL;
	c.path = path;
	slash = strrchr(path, '/');
	if (slash && !(c.dir = strndup(path, (size_t)(slash - path)))) {
		rc = MB_ERR_NOMEM;
		goto fail;
	}

	rc = read_file(&c, &buf, &len);
	if (rc < 0)
		goto fail;

	cfg = calloc(1, sizeof(*cfg));
	if (!cfg || !(cfg->path = strdup(path))) {
		rc = MB_ERR_NOMEM;
		goto fail;
	}
	rc = set_defaults(cfg);
	if (rc < 0)
		goto fail;
	c.cfg = cfg;
	rc = load(&c, buf, len);
	if (rc < 0)
		goto fail;
	if (!cfg->imei && set_hostname(cfg) < 0) {
		rc = MB_ERR_NOMEM;
		goto fail;
	}
	if (c.nomem) {
		rc = MB_ERR_NOMEM;
		goto fail;
	}
	rc = c.errors ? MB_ERR_CONFIG : 0;

fail:
	if (flush_diags(&c, diags) < 0 && rc == 0)
		rc = MB_ERR_NOMEM;
	if (rc == 0)
		*out = cfg;
	else
		config_free(cfg);
	free(buf);
	free(c.dir);
	return rc;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	free(cfg->path);
	free(cfg->imei);
	for (size_t i = 0; i < cfg->serial_port_count; i++) {
		free(cfg->serial_ports[i].name);
		free(cfg->serial_ports[i].device);
	}
	free(cfg->serial_ports);
	for (size_t i = 0; i < cfg->device_count; i++) {
		free(cfg->devices[i].id);
		free(cfg->devices[i].address_text);
		free(cfg->devices[i].host);
		free(cfg->devices[i].blocks);
	}
	free(cfg->devices);
	free(cfg->logger.id);
	free(cfg->logger.store_path);
	free(cfg->logger.topic);
	free(cfg->mqtt.broker);
	free(cfg->mqtt.host);
	free(cfg->mqtt.username);
	free(cfg->mqtt.password);
	free(cfg->mqtt.client_id);
	free(cfg->mqtt.ca_file);
	free(cfg->mqtt.ca_path);
	free(cfg->mqtt.cert_file);
	free(cfg->mqtt.key_file);
	for (size_t i = 0; i < cfg->mqtt.at_topic_count; i++) {
		free(cfg->mqtt.at_topics[i].topic);
		free(cfg->mqtt.at_topics[i].response);
	}
	free(cfg->mqtt.status_topic);
	free(cfg->modem.device);
	free(cfg);
}

void config_diags_free(struct config_diags *diags)
{
	if (!diags)
		return;
	for (size_t i = 0; i < diags->count; i++)
		free(diags->items[i].text);
	free(diags->items);
	diags->items = NULL;
	diags->count = 0;
	diags->errors = 0;
}

const struct device_config *config_find_device(const struct config *cfg, const char *id)
{
	if (!cfg || !id)
		return NULL;
	for (size_t i = 0; i < cfg->device_count; i++)
		if (cfg->devices[i].id && !strcmp(cfg->devices[i].id, id))
			return &cfg->devices[i];
	return NULL;
}

int config_set_imei(struct config *cfg, const char *imei)
{
	char *copy;

	if (!cfg || !imei || !*imei)
		return MB_ERR_INVAL;
	copy = strdup(imei);
	if (!copy)
		return MB_ERR_NOMEM;
	free(cfg->imei);
	cfg->imei = copy;
	cfg->imei_configured = false;
	return 0;
}

char *config_subst_imei(const char *text, const char *imei)
{
	static const char tag[] = "[IMEI]";
	const size_t tlen = sizeof(tag) - 1;
	size_t ilen, n = 0, len;
	const char *p;
	char *out, *o;

	if (!text)
		return NULL;
	if (!imei)
		imei = "";
	ilen = strlen(imei);
	for (p = text; (p = strstr(p, tag)); p += tlen)
		n++;
	len = strlen(text) - n * tlen + n * ilen;
	out = malloc(len + 1);
	if (!out)
		return NULL;
	for (o = out, p = text; *p;) {
		if (!strncmp(p, tag, tlen)) {
			memcpy(o, imei, ilen);
			o += ilen;
			p += tlen;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	return out;
}
