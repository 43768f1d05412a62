/*
 * command_config.c - the configuration commands: GETPARAM, SETPARAM and GETCONFIG.
 *
 * They work on the configuration *file* (confedit.c): it is what SETPARAM changes and what
 * the next start uses. SETPARAM validates the would-be file with the same loader as
 * `modbridge check`, and its certificates as `check` does, before it replaces the old one;
 * the running configuration is not touched (the daemon restarts to apply it). Runs on the
 * thread executing the command; blocks on file I/O only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomicfile.h"
#include "certinfo.h"
#include "command.h"
#include "command_internal.h"
#include "confedit.h"
#include "error.h"

/* A configuration file is a few kilobytes; this only bounds a wrong path. */
#define CONFIG_FILE_MAX (4L * 1024 * 1024)

static char *read_config_file(const char *path, size_t *len, char *reason, size_t rlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;

	if (!f) {
		snprintf(reason, rlen, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (n == cap) {
			char *grown;

			if (cap >= (size_t)CONFIG_FILE_MAX) {
				snprintf(reason, rlen, "%s is larger than %ld bytes", path,
					 CONFIG_FILE_MAX);
				goto fail;
			}
			cap = cap ? cap * 2 : 4096;
			grown = realloc(buf, cap + 1);
			if (!grown) {
				snprintf(reason, rlen, "out of memory");
				goto fail;
			}
			buf = grown;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			if (ferror(f)) {
				snprintf(reason, rlen, "cannot read %s: %s", path,
					 strerror(errno ? errno : EIO));
				goto fail;
			}
			break;
		}
	}
	fclose(f);
	if (!buf && !(buf = malloc(1))) {
		snprintf(reason, rlen, "out of memory");
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
fail:
	fclose(f);
	free(buf);
	return NULL;
}

void command_do_getparam(const struct command_env *env, const struct command *c,
			 struct command_reply *r)
{
	char why[512], *text, *value = NULL;
	size_t len;

	text = read_config_file(env->cfg->path, &len, why, sizeof(why));
	if (!text) {
		command_reply_error(r, "%s", why);
		return;
	}
	if (confedit_get(text, len, c->key, &value, why, sizeof(why)) != 0) {
		command_reply_error(r, "%s", why);
	} else {
		command_reply_line(r, "%s", confedit_is_secret(c->key) ? "***" : value);
		r->ok = true;
	}
	free(value);
	free(text);
}

void command_do_getconfig(const struct command_env *env, struct command_reply *r)
{
	char why[512], *text, *dump = NULL;
	size_t len;

	text = read_config_file(env->cfg->path, &len, why, sizeof(why));
	if (!text) {
		command_reply_error(r, "%s", why);
		return;
	}
	if (confedit_dump_redacted(text, len, &dump, why, sizeof(why)) != 0) {
		command_reply_error(r, "%s", why);
	} else {
		command_reply_lines(r, dump);
		r->ok = true;
	}
	free(dump);
	free(text);
}

/*
 * The certificate checks of `modbridge check`: a file that loads but holds no certificate
 * would only fail when the daemon starts, and then the gateway could not be reached.
 */
static int check_certificates(const struct config *cfg, struct command_reply *r)
{
	char why[512];
	int problems = 0;

	if (!cfg->mqtt.tls)
		return 0;
	const char *files[][2] = {{"mqtt.ca_file", cfg->mqtt.ca_file},
				  {"mqtt.cert_file", cfg->mqtt.cert_file}};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		if (files[i][1] && certinfo_describe(files[i][1], why, sizeof(why)) != 0) {
			command_reply_line(r, "%s: %s", files[i][0], why);
			problems++;
		}
	}
	if (cfg->mqtt.cert_file && cfg->mqtt.key_file &&
	    certinfo_check_key_pair(cfg->mqtt.cert_file, cfg->mqtt.key_file, why, sizeof(why)) !=
		    0) {
		command_reply_line(r, "mqtt.key_file: %s", why);
		problems++;
	}
	return problems;
}

/* Replaces every occurrence of from (the staged file's name) by to in a diagnostic. */
static void add_diag(struct command_reply *r, const char *text, const char *from, const char *to)
{
	const char *hit = strstr(text, from);

	if (hit)
		command_reply_line(r, "%.*s%s%s", (int)(hit - text), text, to, hit + strlen(from));
	else
		command_reply_line(r, "%s", text);
}

void command_do_setparam(const struct command_env *env, const struct command *c,
			 struct command_reply *r)
{
	const char *path = env->cfg->path;
	char why[512], *text = NULL, *edited = NULL, *staged = NULL, *old = NULL;
	size_t len, elen;
	struct config_diags diags = {0};
	struct config *check = NULL;

	/* The permissions are the gateway owner's decision, made on the gateway. */
	if (!strncmp(c->key, "remote.", 7) || !strcmp(c->key, "remote")) {
		command_reply_error(r,
				    "%s can only be changed in the configuration file on the gateway",
				    c->key);
		return;
	}
	text = read_config_file(path, &len, why, sizeof(why));
	if (!text) {
		command_reply_error(r, "%s", why);
		return;
	}
	if (confedit_get(text, len, c->key, &old, why, sizeof(why)) == 0 &&
	    !strcmp(old, c->value)) {
		command_reply_line(r, "%s is already %s", c->key,
				   confedit_is_secret(c->key) ? "***" : c->value);
		r->ok = true;
		goto out;
	}
	if (confedit_set(text, len, c->key, c->value, &edited, &elen, why, sizeof(why)) != 0) {
		command_reply_error(r, "%s", why);
		goto out;
	}
	if (atomicfile_stage(path, edited, elen, &staged, why, sizeof(why)) != 0) {
		command_reply_error(r, "configuration not changed: %s", why);
		goto out;
	}
	/* The exact bytes that would be committed go through the full loader first. */
	int rc = config_load(staged, &check, &diags);
	if (rc != 0) {
		for (size_t i = 0; i < diags.count; i++)
			if (diags.items[i].severity == CONFIG_ERROR)
				add_diag(r, diags.items[i].text, staged, path);
		atomicfile_discard(staged);
		if (rc == MB_ERR_CONFIG)
			command_reply_error(
				r,
				"configuration not changed: %s=%s would make it invalid (%zu error%s)",
				c->key, confedit_is_secret(c->key) ? "***" : c->value, diags.errors,
				diags.errors == 1 ? "" : "s");
		else
			command_reply_error(r, "configuration not changed: %s", mb_strerror(rc));
		goto out;
	}
	int problems = check_certificates(check, r);
	if (problems) {
		atomicfile_discard(staged);
		command_reply_error(
			r,
			"configuration not changed: %s=%s would make it unusable (%d certificate problem%s)",
			c->key, confedit_is_secret(c->key) ? "***" : c->value, problems,
			problems == 1 ? "" : "s");
		goto out;
	}
	if (atomicfile_commit(staged, path, why, sizeof(why)) != 0) {
		command_reply_error(r, "%s", why);
		goto out;
	}
	command_reply_line(r, "%s=%s", c->key, confedit_is_secret(c->key) ? "***" : c->value);
	if (env->daemon) {
		command_reply_line(r, "saved; the gateway restarts to apply it");
		r->restart = true;
	} else {
		command_reply_line(r,
				   "saved; a running daemon applies it on SIGHUP or at its next start");
	}
	r->ok = true;
out:
	config_free(check);
	config_diags_free(&diags);
	free(staged);
	free(old);
	free(edited);
	free(text);
}
