/*
 * config_get.c - the loader's typed getters: one key of a section becomes a checked value
 * (text, integer in a range, boolean, one of a list of words, a readable file), or a
 * diagnostic naming the key, its line and what is allowed; see config_internal.h.
 *
 * The getters return 1 when the key is set and valid (out written), 0 when it is absent
 * or empty (out untouched, so it keeps its default) and -1 when it is invalid (reported;
 * out untouched). The YAML side (node kinds, the null rule) is yamldoc.h's; the parsing
 * of the text is config_values.c's. Runs on the loading thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_internal.h"

/* what names the expected value in the message when a list or mapping is found. */
int config_get_scalar(const struct config_obj *o, const char *name, const char *what,
		      const char **out)
{
	const struct yamldoc_node *v = config_obj_get(o, name);

	if (!v)
		return 0;
	if (yamldoc_kind(v) != YAMLDOC_SCALAR) {
		config_obj_error(o, name, "expected %s, got %s", what, config_kind_name(v));
		return -1;
	}
	if (strlen(yamldoc_scalar(v)) != yamldoc_scalar_len(v)) {
		config_obj_error(o, name, "contains a NUL character (allowed: text without \\0)");
		return -1;
	}
	*out = yamldoc_scalar(v);
	return 1;
}

int config_get_text(const struct config_obj *o, const char *name, const char **out)
{
	return config_get_scalar(o, name, "a single value", out);
}

int config_get_strdup(const struct config_obj *o, const char *name, char **out)
{
	const char *t;
	int rc = config_get_text(o, name, &t);
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

int config_get_ll(const struct config_obj *o, const char *name, long long min, long long max,
		  const char *unit, long long *out)
{
	const char *t;
	long long v;
	int rc = config_get_scalar(o, name, "an integer", &t);

	if (rc <= 0)
		return rc;
	if (!config_parse_ll(t, &v)) {
		config_obj_error(o, name, "expected an integer, got '%.64s'", t);
		return -1;
	}
	if (v < min || v > max) {
		config_obj_error(o, name, "%.64s is out of range (allowed: %lld..%lld%s)", t, min,
				 max, unit);
		return -1;
	}
	*out = v;
	return 1;
}

int config_get_int(const struct config_obj *o, const char *name, int min, int max, const char *unit,
		   int *out)
{
	long long v;
	int rc = config_get_ll(o, name, min, max, unit, &v);

	if (rc == 1)
		*out = (int)v;
	return rc;
}

int config_get_bool(const struct config_obj *o, const char *name, bool *out)
{
	const char *t;
	int rc = config_get_scalar(o, name, "true or false", &t);

	if (rc <= 0)
		return rc;
	if (!config_parse_bool(t, out)) {
		config_obj_error(
			o, name,
			"expected true or false, got '%.64s' (allowed: true/false, yes/no, on/off)",
			t);
		return -1;
	}
	return 1;
}

int config_get_choice(const struct config_obj *o, const char *name, const struct config_choice *tab,
		      size_t n, const char *allowed, int *out)
{
	const struct config_choice *ch;
	const char *t;
	int rc = config_get_text(o, name, &t);

	if (rc <= 0)
		return rc;
	ch = config_find_choice(t, tab, n);
	if (!ch) {
		config_obj_error(o, name, "'%.64s' is not valid (allowed: %s)", t, allowed);
		return -1;
	}
	*out = ch->value;
	return 1;
}

/* A mapping section or NULL (absent, or wrong kind: reported). */
const struct yamldoc_node *config_get_mapping(const struct config_obj *o, const char *name,
					      const char *what)
{
	const struct yamldoc_node *v = config_obj_get(o, name);

	if (v && yamldoc_kind(v) != YAMLDOC_MAPPING) {
		config_obj_error(o, name, "expected a mapping of %s, got %s", what,
				 config_kind_name(v));
		return NULL;
	}
	return v;
}

/* Joins a relative path to the configuration file's directory. */
static char *resolve_path(struct config_ctx *c, const char *p)
{
	if (p[0] == '/' || !c->dir)
		return strdup(p);
	return config_fmt("%s/%s", c->dir, p);
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
int config_get_path(const struct config_obj *o, const char *name, bool check, bool dir, char **out)
{
	const char *t;
	char *p;
	int rc = config_get_text(o, name, &t);
	int err;

	if (rc <= 0)
		return rc;
	if (!*t) {
		config_obj_error(o, name, "must not be empty (remove the key to use the default)");
		return -1;
	}
	p = resolve_path(o->c, t);
	if (!p) {
		o->c->nomem = true;
		return -1;
	}
	if (check && (err = check_readable(p, dir)) != 0) {
		config_obj_error(o, name, "cannot read '%s': %s", p, strerror(err));
		free(p);
		return -1;
	}
	free(*out);
	*out = p;
	return 1;
}
