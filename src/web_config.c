/*
 * web_config.c - the configuration screens' data and saving; see web_internal.h.
 *
 * GET /api/config loads the file as `check` does and returns every value the forms show
 * (web_config_view.c writes them: defaults included, as text the file accepts; secrets only
 * as "set" or not, never their value). POST /api/config takes the form's changes:
 *   set:KEY=VALUE   a value ("modbus.devices[2].period"); an empty value removes the key
 *                   (its default applies), except for secrets, where empty means "unchanged";
 *                   keys of the entry one past a list's end add a new entry with them;
 *   del:KEY         remove a key or a list entry ("modbus.devices[1]");
 *   version         the file's version the form was made from: a file changed since then
 *                   (by hand, SETPARAM or another browser) is not overwritten (409).
 * The changes are spliced into the file's text (confedit.h: comments and key order kept),
 * the result is staged next to the file and loaded with the full loader; its errors go back
 * with their keys, so the page shows each next to its field, and nothing is written. A
 * valid result replaces the file atomically, the old one kept as FILE.bak, one audit line
 * names what changed, and the daemon restarts with it (the SIGHUP path: no reading lost).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomicfile.h"
#include "confedit.h"
#include "error.h"
#include "log.h"
#include "web_internal.h"
#include "yamldoc.h"

#define CONFIG_FILE_MAX ((size_t)4 * 1024 * 1024)
#define MAX_CHANGES 256
#define ENTRY_KEYS_MAX 32 /* keys of one new list entry */

void web_text_version(const char *text, size_t len, char *out)
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a */

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)text[i];
		h *= 1099511628211ULL;
	}
	snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* "FILE:LINE: KEY: message" -> {line, key, message, warning}; the staged name -> path. */
static void json_diag(struct web_json *j, const struct config_diag *d, const char *staged)
{
	const char *t = d->text;
	size_t sl = staged ? strlen(staged) : 0;
	long line = 0;

	if (staged && !strncmp(t, staged, sl) && t[sl] == ':')
		t += sl + 1;
	else if (strchr(t, ':'))
		t = strchr(t, ':') + 1;
	char *end;
	line = strtol(t, &end, 10);
	if (end != t && *end == ':')
		t = end + 1;
	while (*t == ' ')
		t++;
	/* A key path is letters, digits, '_', '.', '[', ']' up to ": ". */
	size_t k = strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.[]");
	web_json_obj(j);
	web_json_kint(j, "line", line);
	if (k && t[k] == ':' && t[k + 1] == ' ') {
		web_json_key(j, "key");
		web_json_strn(j, t, k);
		web_json_kstr(j, "message", t + k + 2);
	} else {
		web_json_kstr(j, "key", "");
		web_json_kstr(j, "message", t);
	}
	web_json_kbool(j, "warning", d->severity == CONFIG_WARNING);
	web_json_obj_end(j);
}

static void json_diags(struct web_json *j, const struct config_diags *diags, const char *staged)
{
	web_json_key(j, "diagnostics");
	web_json_arr(j);
	for (size_t i = 0; diags && i < diags->count; i++)
		json_diag(j, &diags->items[i], staged);
	web_json_arr_end(j);
}

static char *read_text(const char *path, size_t *len, char *why, size_t why_len)
{
	char *text = NULL;

	if (yamldoc_read_file(path, CONFIG_FILE_MAX, &text, len, why, why_len) != 0)
		return NULL;
	return text;
}

void web_handle_config_get(struct web_req *r)
{
	const char *path = r->env->cfg->path;
	struct config_diags diags = {0};
	struct config *cfg = NULL;
	char why[512], version[17] = "";
	size_t len = 0, out_len = 0;
	char *text = read_text(path, &len, why, sizeof(why));
	struct web_json j = {0};

	if (!text) {
		web_reply_error(r, 500, "%s: %s", path, why);
		return;
	}
	web_text_version(text, len, version);
	int rc = config_load(path, &cfg, &diags);
	web_json_obj(&j);
	web_json_kbool(&j, "ok", true);
	web_json_kstr(&j, "file", path);
	web_json_kstr(&j, "version", version);
	/* A file broken by hand: its errors, and the running configuration's values. */
	web_json_kbool(&j, "file_valid", rc == 0);
	json_diags(&j, &diags, NULL);
	const struct config *show = rc == 0 ? cfg : r->env->cfg;
	web_config_json(&j, show, text, len);
	web_json_obj_end(&j);
	config_free(cfg);
	config_diags_free(&diags);
	free(text);
	char *out = web_json_finish(&j, &out_len);
	web_reply_json(r, 200, out, out_len);
}

/* ---------------------------------------------------------------- applying changes */

struct change {
	const char *key;   /* after "set:" or "del:" */
	const char *value; /* NULL for del */
	bool done;
};

/* A key ending in "NAME[i].FIELD": its list ("NAME"), index and field; false otherwise. */
static bool entry_key(const char *key, char *list, size_t list_len, long *index, const char **field)
{
	const char *dot = strrchr(key, '.'), *open = NULL;

	for (const char *p = key; dot && p < dot; p++)
		if (*p == '[')
			open = p;

	if (!dot || !open || dot[-1] != ']' || (size_t)(open - key) >= list_len)
		return false;
	char *end;
	*index = strtol(open + 1, &end, 10);
	if (end != dot - 1 || *index < 0)
		return false;
	memcpy(list, key, (size_t)(open - key));
	list[open - key] = '\0';
	*field = dot + 1;
	return !strchr(*field, '.') && !strchr(*field, '[');
}

/* Replaces *text with next (a successful edit). */
static void take(char **text, size_t *len, char *next, size_t next_len)
{
	free(*text);
	*text = next;
	*len = next_len;
}

/* Reports a change that could not be made, next to its key. */
static void change_error(struct web_json *errs, const char *key, const char *why)
{
	web_json_obj(errs);
	web_json_kint(errs, "line", 0);
	web_json_kstr(errs, "key", key);
	web_json_kstr(errs, "message", why);
	web_json_kbool(errs, "warning", false);
	web_json_obj_end(errs);
}

/* The length of the list at key in text (0 when absent), or -1. */
static long list_length(const char *text, size_t len, const char *list)
{
	char key[CONFEDIT_KEY_MAX + 32], *v = NULL, why[256];
	long n = 0;

	/* Probe entries one by one: confedit_get says "has N entries" past the end. */
	for (; n < 10000; n++) {
		snprintf(key, sizeof(key), "%s[%ld]", list, n);
		int rc = confedit_get(text, len, key, &v, why, sizeof(why));
		free(v);
		v = NULL;
		if (rc == MB_ERR_NOTFOUND || (rc == MB_ERR_INVAL && strstr(why, "entries")) ||
		    (rc == MB_ERR_INVAL && strstr(why, "not a list")))
			break;
		if (rc == MB_ERR_NOMEM)
			return -1;
	}
	return n;
}

/*
 * Applies the form's changes to *text. Returns 0 (every change made), 1 (some could not
 * be made: described in errs) or MB_ERR_NOMEM. *summary lists what changed, for the audit.
 */
static int apply_changes(const struct httpform *form, char **text, size_t *len,
			 struct web_json *errs, char *summary, size_t summary_len)
{
	struct change ch[MAX_CHANGES];
	size_t n = 0, used = 0;
	char why[512], *next = NULL;
	size_t next_len = 0;
	int result = 0;

	summary[0] = '\0';
	for (size_t i = 0; i < form->count && n < MAX_CHANGES; i++) {
		const struct httpform_field *f = &form->fields[i];
		if (!strncmp(f->name, "set:", 4))
			ch[n++] = (struct change){f->name + 4, f->value, false};
		else if (!strncmp(f->name, "del:", 4))
			ch[n++] = (struct change){f->name + 4, NULL, false};
	}
#define NOTE(...) \
	do { \
		if (used < summary_len) \
			used += (size_t)snprintf(summary + used, summary_len - used, __VA_ARGS__); \
	} while (0)

	/* The permissions and the web UI's own logins are decided in the file on the gateway,
	 * as for SETPARAM: a session must not widen what it may do, or lock everyone out. */
	for (size_t i = 0; i < n; i++) {
		if (!strncmp(ch[i].key, "remote", 6) || !strncmp(ch[i].key, "web", 3)) {
			change_error(errs, ch[i].key,
				     "can only be changed in the configuration file on the gateway");
			ch[i].done = true;
			result = 1;
		}
	}
	/* 1. Values of keys that exist (or may be added to a section). */
	for (size_t i = 0; i < n; i++) {
		if (ch[i].done)
			continue;
		char list[CONFEDIT_KEY_MAX + 1];
		const char *field;
		long idx;

		if (!ch[i].value)
			continue;
		bool secret = confedit_is_secret(ch[i].key) || !strcmp(ch[i].key, "mqtt.username");
		if (entry_key(ch[i].key, list, sizeof(list), &idx, &field) &&
		    idx >= list_length(*text, *len, list))
			continue; /* a new entry: step 2 */
		ch[i].done = true;
		if (!*ch[i].value) {
			if (secret)
				continue; /* write-only: empty means unchanged */
			int rc = confedit_delete(*text, *len, ch[i].key, &next, &next_len, why,
						 sizeof(why));
			if (rc == 0) {
				take(text, len, next, next_len);
				NOTE("%s%s=(default)", used ? ", " : "", ch[i].key);
			} else if (rc != MB_ERR_NOTFOUND) {
				change_error(errs, ch[i].key, why);
				result = 1;
			}
			continue;
		}
		char *old = NULL;
		if (confedit_get(*text, *len, ch[i].key, &old, why, sizeof(why)) == 0 &&
		    !strcmp(old, ch[i].value)) {
			free(old);
			continue;
		}
		free(old);
		if (confedit_set(*text, *len, ch[i].key, ch[i].value, &next, &next_len, why,
				 sizeof(why)) == 0) {
			take(text, len, next, next_len);
			NOTE("%s%s=%s", used ? ", " : "", ch[i].key, secret ? "***" : ch[i].value);
		} else {
			change_error(errs, ch[i].key, why);
			result = 1;
		}
	}
	/* 2. New entries: the keys of one index past a list's end, in the form's order. */
	for (size_t i = 0; i < n; i++) {
		char list[CONFEDIT_KEY_MAX + 1], list2[CONFEDIT_KEY_MAX + 1];
		const char *names[ENTRY_KEYS_MAX], *values[ENTRY_KEYS_MAX], *field;
		long idx, idx2;
		size_t k = 0;

		if (ch[i].done || !ch[i].value ||
		    !entry_key(ch[i].key, list, sizeof(list), &idx, &field))
			continue;
		for (size_t m = i; m < n; m++) {
			if (ch[m].done || !ch[m].value ||
			    !entry_key(ch[m].key, list2, sizeof(list2), &idx2, &field) ||
			    strcmp(list, list2) != 0 || idx2 != idx)
				continue;
			ch[m].done = true;
			if (*ch[m].value && k < ENTRY_KEYS_MAX) {
				names[k] = field;
				values[k++] = ch[m].value;
			}
		}
		if (k == 0)
			continue;
		if (confedit_append(*text, *len, list, names, values, k, &next, &next_len, why,
				    sizeof(why)) == 0) {
			take(text, len, next, next_len);
			NOTE("%sadded %s entry %s=%s", used ? ", " : "", list, names[0], values[0]);
		} else {
			change_error(errs, ch[i].key, why);
			result = 1;
		}
	}
	/* 3. Removals, list entries from the last one down so positions stay right. */
	for (;;) {
		size_t best = n;
		long best_idx = -1;
		for (size_t i = 0; i < n; i++) {
			if (ch[i].done || ch[i].value)
				continue;
			const char *open = strrchr(ch[i].key, '[');
			long idx = open ? strtol(open + 1, NULL, 10) : 0;
			if (best == n || idx > best_idx) {
				best = i;
				best_idx = idx;
			}
		}
		if (best == n)
			break;
		ch[best].done = true;
		int rc = confedit_delete(*text, *len, ch[best].key, &next, &next_len, why,
					 sizeof(why));
		if (rc == 0) {
			take(text, len, next, next_len);
			NOTE("%sremoved %s", used ? ", " : "", ch[best].key);
		} else if (rc != MB_ERR_NOTFOUND) {
			change_error(errs, ch[best].key, why);
			result = 1;
		}
	}
#undef NOTE
	return result;
}

/* Replies 422 with the problems; staged (or NULL) names the file in the loader's texts. */
static void reply_problems(struct web_req *r, int status, const char *error,
			   const struct config_diags *diags, const char *staged,
			   const char *change_errs)
{
	struct web_json j = {0};
	size_t len = 0;

	web_json_obj(&j);
	web_json_kbool(&j, "ok", false);
	web_json_kstr(&j, "error", error);
	web_json_key(&j, "diagnostics");
	web_json_arr(&j);
	if (change_errs && *change_errs)
		web_json_raw(&j, change_errs);
	for (size_t i = 0; diags && i < diags->count; i++)
		json_diag(&j, &diags->items[i], staged);
	web_json_arr_end(&j);
	web_json_obj_end(&j);
	char *out = web_json_finish(&j, &len);
	web_reply_json(r, status, out, len);
}

int web_config_stage(struct web_req *r, bool for_save, char **staged_out, struct config **cfg_out,
		     char **text_out, size_t *len_out)
{
	const char *path = r->env->cfg->path;
	char why[512], version[17], summary[2048];
	size_t len = 0, elen = 0;
	struct web_json errs = {0};
	struct config_diags diags = {0};
	char *text = read_text(path, &len, why, sizeof(why)), *staged = NULL;
	int rc;

	*staged_out = NULL;
	*cfg_out = NULL;
	if (!text) {
		web_reply_error(r, 500, "%s: %s", path, why);
		return MB_ERR_IO;
	}
	web_text_version(text, len, version);
	const char *sent = httpform_get(&r->form, "version");
	if (for_save && (!sent || strcmp(sent, version) != 0)) {
		free(text);
		web_reply_error(
			r, 409,
			"the configuration file changed since this page loaded it (by hand, SETPARAM or another browser): reload the page, your change was not saved");
		return MB_ERR_BUSY;
	}
	/* errs collects JSON objects separated by commas: a fragment of an array. */
	errs.depth = 1;
	rc = apply_changes(&r->form, &text, &len, &errs, summary, sizeof(summary));
	char *frag = web_json_finish(&errs, &elen);
	if (rc == 1) {
		reply_problems(r, 422, "some changes could not be made in the file", NULL, NULL,
			       frag);
		free(frag);
		free(text);
		return MB_ERR_INVAL;
	}
	free(frag);
	if (rc < 0) {
		free(text);
		r->resp->nomem = true;
		return rc;
	}
	if (atomicfile_stage(path, text, len, &staged, why, sizeof(why)) != 0) {
		web_reply_error(r, 500, "configuration not changed: %s", why);
		free(text);
		return MB_ERR_IO;
	}
	/* The exact bytes that would be written go through the loader of `check`. */
	rc = config_load(staged, cfg_out, &diags);
	if (rc != 0) {
		reply_problems(r, 422,
			       rc == MB_ERR_CONFIG
				       ? "the configuration would be invalid: nothing was saved"
				       : mb_strerror(rc),
			       &diags, staged, NULL);
		atomicfile_discard(staged);
		free(staged);
		config_diags_free(&diags);
		free(text);
		return rc;
	}
	config_diags_free(&diags);
	*staged_out = staged;
	if (text_out) {
		*text_out = text;
		*len_out = len;
	} else {
		free(text);
	}
	return 0;
}

/* Copies the current file to FILE.bak (atomically), so a save can be undone by hand. */
static int write_backup(const char *path, char *why, size_t why_len)
{
	size_t len = 0, blen = strlen(path) + 5;
	char *text = read_text(path, &len, why, why_len), *staged = NULL;
	char *bak = malloc(blen);
	int rc = MB_ERR_NOMEM;

	if (!text) {
		free(bak);
		return MB_ERR_IO;
	}
	if (bak) {
		snprintf(bak, blen, "%s.bak", path);
		rc = atomicfile_stage(bak, text, len, &staged, why, why_len);
		if (rc == 0)
			rc = atomicfile_commit(staged, bak, why, why_len);
	}
	free(staged);
	free(bak);
	free(text);
	return rc;
}

/* Replaces the file by staged (already checked), with a backup; audits and restarts. */
static int commit_staged(struct web_req *r, const char *staged, const char *what)
{
	const char *path = r->env->cfg->path;
	char why[512];

	if (write_backup(path, why, sizeof(why)) != 0) {
		atomicfile_discard(staged);
		web_reply_error(r, 500, "configuration not changed: cannot keep a backup: %s", why);
		return MB_ERR_IO;
	}
	if (atomicfile_commit(staged, path, why, sizeof(why)) != 0) {
		web_reply_error(r, 500, "%s", why);
		return MB_ERR_IO;
	}
	web_audit(r, "saved %s: %s; restarting to apply it", path, what);
	return 0;
}

static void reply_saved(struct web_req *r, const struct config *checked, bool changed)
{
	struct web_json j = {0};
	size_t len = 0;
	struct config_diags none = {0};

	(void)checked;
	web_json_obj(&j);
	web_json_kbool(&j, "ok", true);
	web_json_kbool(&j, "changed", changed);
	web_json_kbool(&j, "restarting", changed);
	json_diags(&j, &none, NULL);
	web_json_obj_end(&j);
	char *out = web_json_finish(&j, &len);
	web_reply_json(r, 200, out, len);
	if (changed && r->env->restart)
		r->env->restart(r->env->restart_ctx);
}

void web_handle_config_post(struct web_req *r)
{
	char *staged = NULL, *text = NULL, summary[2048], why[512];
	struct config *checked = NULL;
	size_t len = 0, olen = 0;
	struct web_json dummy = {0};

	pthread_mutex_lock(&r->w->op_lock);
	if (web_config_stage(r, true, &staged, &checked, &text, &len) != 0)
		goto out;
	/* What changed, for the audit line (secrets as ***): apply again on the old text. */
	char *old = read_text(r->env->cfg->path, &olen, why, sizeof(why));
	dummy.depth = 1;
	if (old)
		apply_changes(&r->form, &old, &olen, &dummy, summary, sizeof(summary));
	else
		snprintf(summary, sizeof(summary), "?");
	free(web_json_finish(&dummy, &olen));
	bool changed = old && summary[0];
	free(old);
	if (!changed) {
		atomicfile_discard(staged);
		reply_saved(r, checked, false);
		goto out;
	}
	if (commit_staged(r, staged, summary) == 0)
		reply_saved(r, checked, true);
out:
	pthread_mutex_unlock(&r->w->op_lock);
	config_free(checked);
	free(staged);
	free(text);
}

int web_config_commit_text(struct web_req *r, const char *text, size_t len, const char *what)
{
	const char *path = r->env->cfg->path;
	struct config_diags diags = {0};
	struct config *checked = NULL;
	char *staged = NULL, why[512];

	if (atomicfile_stage(path, text, len, &staged, why, sizeof(why)) != 0) {
		web_reply_error(r, 500, "configuration not changed: %s", why);
		return MB_ERR_IO;
	}
	int rc = config_load(staged, &checked, &diags);
	if (rc != 0) {
		reply_problems(r, 422, "the configuration would be invalid: nothing was saved",
			       &diags, staged, NULL);
		atomicfile_discard(staged);
	} else {
		rc = commit_staged(r, staged, what);
	}
	config_free(checked);
	config_diags_free(&diags);
	free(staged);
	return rc;
}
