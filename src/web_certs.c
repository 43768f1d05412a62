/*
 * web_certs.c - the certificates screen: upload the CA, the client certificate and its key,
 * show each certificate's subject, expiry and SHA-1 fingerprint, delete them; see
 * web_internal.h.
 *
 * Uploads are checked before they are stored: PEM text, a certificate where one is
 * expected, an unencrypted key, and the key must belong to the certificate (the one
 * uploaded with it, or the one configured). They are written under web.cert_dir, a
 * directory the daemon owns (made 0700; refused when another user owns it or others may
 * write to it): first to a temporary file there (O_EXCL, 0600), checked with certinfo.h,
 * then renamed to their own name: certificates 0644, keys 0600. The names sent by the
 * browser are used only when they are plain names (httpform_safe_filename): "../x" is
 * refused, never cleaned up into something else. Then mqtt.ca_file, cert_file or key_file
 * point at them, saved through the configuration's checker like any change (the Logger
 * page offers the stored files for the http and ftp keys). A file is "used by" any of the
 * TLS keys of mqtt, http and ftp, and a delete takes it out of each. Key contents are never
 * sent back; only "a private key" and whether it matches.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certinfo.h"
#include "confedit.h"
#include "error.h"
#include "web_internal.h"
#include "yamldoc.h"

#define CONFIG_FILE_MAX ((size_t)4 * 1024 * 1024)

static const struct {
	const char *field; /* form field and slot name */
	const char *key;   /* configuration key */
	bool key_file;
} slots[] = {
	{"ca", "mqtt.ca_file", false},
	{"cert", "mqtt.cert_file", false},
	{"key", "mqtt.key_file", true},
};
#define NSLOTS (sizeof(slots) / sizeof(slots[0]))

/* Every key that may point at an uploaded file: "used by", and taken out on delete. */
static const char *const users[] = {
	"mqtt.ca_file",  "mqtt.cert_file", "mqtt.key_file", "http.ca_file", "http.cert_file",
	"http.key_file", "ftp.ca_file",    "ftp.cert_file", "ftp.key_file",
};
#define NUSERS (sizeof(users) / sizeof(users[0]))

/* Makes sure dir exists and is the daemon's own, private enough. Returns 0 or replies. */
static int own_dir(struct web_req *r, const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		web_reply_error(r, 500, "cannot make the certificate directory %s: %s", dir,
				strerror(errno));
		return MB_ERR_IO;
	}
	if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		web_reply_error(r, 500, "%s is not a directory", dir);
		return MB_ERR_IO;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 022)) {
		web_reply_error(
			r, 500,
			"%s is not a directory the daemon owns alone (owner uid %u, mode %03o): fix it or set web.cert_dir",
			dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777));
		return MB_ERR_IO;
	}
	return 0;
}

/* The path dir/name (malloc'd). */
static char *join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* The file's configured value of key, resolved like the loader (relative to its dir). */
static char *configured(const char *text, size_t len, const char *cfg_path, const char *key)
{
	char *v = NULL, why[256];

	if (!text || confedit_get(text, len, key, &v, why, sizeof(why)) != 0)
		return NULL;
	if (v[0] == '/')
		return v;
	const char *slash = strrchr(cfg_path, '/');
	size_t n = (slash ? (size_t)(slash - cfg_path) : 1) + strlen(v) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%.*s/%s", slash ? (int)(slash - cfg_path) : 1,
			 slash ? cfg_path : ".", v);
	free(v);
	return p;
}

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* {"path", "kind", "info"} of one file. */
static void describe(struct web_json *j, const char *path)
{
	char info[512];

	web_json_kstr(j, "path", path);
	if (certinfo_describe(path, info, sizeof(info)) == 0) {
		web_json_kstr(j, "kind", "certificate");
		web_json_kstr(j, "info", info);
	} else if (certinfo_check_key_file(path, info, sizeof(info)) == 0) {
		web_json_kstr(j, "kind", "key");
		web_json_kstr(j, "info", "a private key (its content is never shown)");
	} else {
		web_json_kstr(j, "kind", "unusable");
		web_json_kstr(j, "info", info);
	}
}

void web_handle_certs_get(struct web_req *r)
{
	const char *dir = r->env->cfg->web.cert_dir, *cfg_path = r->env->cfg->path;
	char *text = NULL, why[256], *paths[NSLOTS] = {0}, *used[NUSERS] = {0};
	size_t len = 0, olen = 0;
	struct web_json j = {0};

	if (yamldoc_read_file(cfg_path, CONFIG_FILE_MAX, &text, &len, why, sizeof(why)) != 0)
		text = NULL;
	web_json_obj(&j);
	web_json_kbool(&j, "ok", true);
	web_json_kstr(&j, "dir", dir);
	web_json_key(&j, "slots");
	web_json_obj(&j);
	for (size_t i = 0; i < NSLOTS; i++) {
		paths[i] = configured(text, len, cfg_path, slots[i].key);
		web_json_key(&j, slots[i].field);
		if (!paths[i]) {
			web_json_null(&j);
			continue;
		}
		web_json_obj(&j);
		web_json_kstr(&j, "key", slots[i].key);
		describe(&j, paths[i]);
		web_json_obj_end(&j);
	}
	web_json_obj_end(&j);
	if (paths[1] && paths[2]) {
		web_json_kbool(&j, "pair_ok",
			       certinfo_check_key_pair(paths[1], paths[2], why, sizeof(why)) == 0);
	}
	for (size_t i = 0; i < NUSERS; i++)
		used[i] = configured(text, len, cfg_path, users[i]);
	web_json_key(&j, "files");
	web_json_arr(&j);
	DIR *d = opendir(dir);
	for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
		if (!httpform_safe_filename(e->d_name))
			continue;
		char *p = join(dir, e->d_name);
		struct stat st;
		if (p && lstat(p, &st) == 0 && S_ISREG(st.st_mode)) {
			web_json_obj(&j);
			web_json_kstr(&j, "name", e->d_name);
			web_json_kint(&j, "size", (long long)st.st_size);
			describe(&j, p);
			web_json_key(&j, "used_by");
			web_json_arr(&j);
			for (size_t i = 0; i < NUSERS; i++)
				if (same_file(p, used[i]))
					web_json_str(&j, users[i]);
			web_json_arr_end(&j);
			web_json_obj_end(&j);
		}
		free(p);
	}
	if (d)
		closedir(d);
	web_json_arr_end(&j);
	web_json_obj_end(&j);
	for (size_t i = 0; i < NSLOTS; i++)
		free(paths[i]);
	for (size_t i = 0; i < NUSERS; i++)
		free(used[i]);
	free(text);
	char *out = web_json_finish(&j, &olen);
	web_reply_json(r, 200, out, olen);
}

/* Writes data to a new temporary file in dir (0600). Returns its malloc'd path or NULL. */
static char *write_temp(const char *dir, const char *data, size_t len, char *why, size_t why_len)
{
	char *tmp = join(dir, ".upload-XXXXXX");
	int fd;

	if (!tmp) {
		snprintf(why, why_len, "out of memory");
		return NULL;
	}
	fd = mkstemp(tmp); /* O_EXCL, 0600 */
	if (fd < 0) {
		snprintf(why, why_len, "cannot write in %s: %s", dir, strerror(errno));
		free(tmp);
		return NULL;
	}
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, data + done, len - done);
		if (n <= 0) {
			snprintf(why, why_len, "cannot write in %s: %s", dir, strerror(errno));
			close(fd);
			unlink(tmp);
			free(tmp);
			return NULL;
		}
		done += (size_t)n;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		snprintf(why, why_len, "cannot write in %s: %s", dir, strerror(errno));
		unlink(tmp);
		free(tmp);
		return NULL;
	}
	return tmp;
}

struct upload {
	const struct httpform_field *f;
	char *tmp;   /* checked temporary file */
	char *final; /* dir/name */
	bool existed;
	char info[512];
};

static void upload_clear(struct upload *u, bool keep_final)
{
	if (u->tmp)
		unlink(u->tmp);
	if (!keep_final && u->final && !u->existed && !u->tmp)
		unlink(u->final);
	free(u->tmp);
	free(u->final);
	u->tmp = u->final = NULL;
}

/* One call per slot (not a loop), so the static analyzer follows every free. */
_Static_assert(NSLOTS == 3, "uploads_clear clears three slots");
static void uploads_clear(struct upload *u, bool keep_final)
{
	upload_clear(&u[0], keep_final);
	upload_clear(&u[1], keep_final);
	upload_clear(&u[2], keep_final);
}

/* Checks one uploaded file into u (temp file written). Returns 0 or replies. */
static int check_upload(struct web_req *r, const char *dir, size_t slot, struct upload *u)
{
	const struct httpform_field *f = u->f;
	char why[512];

	if (!f->filename || !httpform_safe_filename(f->filename)) {
		web_reply_error(
			r, 400,
			"%s: the file name '%.64s' is not a plain name (letters, digits, '.', '_' and '-'; not starting with '.'): refused, nothing stored",
			slots[slot].field, f->filename ? f->filename : "");
		return MB_ERR_INVAL;
	}
	if (f->value_len == 0 || f->value_len > WEB_MAX_UPLOAD) {
		web_reply_error(r, 413, "%s: %s is %zu bytes (allowed: 1 .. %zu): nothing stored",
				slots[slot].field, f->filename, f->value_len, WEB_MAX_UPLOAD);
		return MB_ERR_INVAL;
	}
	if (memchr(f->value, '\0', f->value_len) || !strstr(f->value, "-----BEGIN ")) {
		web_reply_error(r, 422, "%s: %s is not a PEM file (-----BEGIN ...): nothing stored",
				slots[slot].field, f->filename);
		return MB_ERR_INVAL;
	}
	u->final = join(dir, f->filename);
	if (!u->final) {
		web_reply_error(r, 500, "out of memory");
		return MB_ERR_NOMEM;
	}
	u->tmp = write_temp(dir, f->value, f->value_len, why, sizeof(why));
	if (!u->tmp) {
		web_reply_error(r, 500, "%s", why);
		return MB_ERR_IO;
	}
	int rc = slots[slot].key_file ? certinfo_check_key_file(u->tmp, why, sizeof(why))
				      : certinfo_check_cert_file(u->tmp, why, sizeof(why));
	/* u->tmp and u->final belong to the caller's array, which uploads_clear frees; the
	 * analyzer loses them across the loop over the slots. */
	// NOLINTBEGIN(clang-analyzer-unix.Malloc)
	if (rc == 0 && !slots[slot].key_file)
		rc = certinfo_describe(u->tmp, u->info, sizeof(u->info));
	// NOLINTEND(clang-analyzer-unix.Malloc)
	if (rc != 0) {
		/* The reason names the temporary file: name the upload instead. */
		char *at = strstr(why, u->tmp);
		web_reply_error(r, 422, "%s: %s: %s: nothing stored", slots[slot].field,
				f->filename, at ? "not usable" : why);
		return MB_ERR_INVAL;
	}
	return 0;
}

void web_handle_certs_post(struct web_req *r)
{
	const char *dir = r->env->cfg->web.cert_dir, *cfg_path = r->env->cfg->path;
	struct upload u[NSLOTS] = {0};
	char why[512], what[1536] = "", *text = NULL, *next = NULL;
	size_t n = 0, len = 0, nlen = 0, used = 0, olen = 0;
	struct web_json j = {0};

	for (size_t i = 0; i < NSLOTS; i++) {
		u[i].f = httpform_find(&r->form, slots[i].field);
		if (u[i].f && !u[i].f->filename && u[i].f->value_len == 0)
			u[i].f = NULL; /* an empty file input */
		n += u[i].f != NULL;
	}
	if (n == 0) {
		web_reply_error(r, 400, "upload a file in ca, cert or key");
		return;
	}
	pthread_mutex_lock(&r->w->op_lock);
	if (own_dir(r, dir) != 0)
		goto out;
	for (size_t i = 0; i < NSLOTS; i++)
		if (u[i].f && check_upload(r, dir, i, &u[i]) != 0)
			goto out;
	if (yamldoc_read_file(cfg_path, CONFIG_FILE_MAX, &text, &len, why, sizeof(why)) != 0) {
		web_reply_error(r, 500, "%s: %s", cfg_path, why);
		goto out;
	}
	/* The key must belong to the certificate: uploaded together, or the configured one. */
	char *cur_cert = configured(text, len, cfg_path, "mqtt.cert_file");
	char *cur_key = configured(text, len, cfg_path, "mqtt.key_file");
	const char *cert = u[1].tmp ? u[1].tmp : cur_cert, *key = u[2].tmp ? u[2].tmp : cur_key;
	int pair = (u[1].tmp || u[2].tmp) && cert && key
			   ? certinfo_check_key_pair(cert, key, why, sizeof(why))
			   : 0;
	free(cur_cert);
	free(cur_key);
	if (pair != 0) {
		web_reply_error(r, 422,
				"the key does not belong to the certificate (%s): nothing stored",
				u[2].tmp && u[1].tmp ? "both uploaded"
				: u[2].tmp
					? "the configured mqtt.cert_file"
					: "the configured mqtt.key_file; upload its new key too");
		goto out;
	}
	/* Stored under their names; then the configuration points at them. */
	for (size_t i = 0; i < NSLOTS; i++) {
		if (!u[i].tmp)
			continue;
		struct stat st;
		u[i].existed = lstat(u[i].final, &st) == 0;
		if (chmod(u[i].tmp, slots[i].key_file ? 0600 : 0644) != 0 ||
		    rename(u[i].tmp, u[i].final) != 0) {
			web_reply_error(r, 500, "cannot store %s: %s", u[i].final, strerror(errno));
			goto out;
		}
		free(u[i].tmp);
		u[i].tmp = NULL;
		if (confedit_set(text, len, slots[i].key, u[i].final, &next, &nlen, why,
				 sizeof(why)) != 0) {
			web_reply_error(r, 422, "%s: %s", slots[i].key, why);
			goto out;
		}
		free(text);
		text = next;
		len = nlen;
		// NOLINTNEXTLINE(clang-analyzer-unix.Malloc): freed by uploads_clear, as above
		used += (size_t)snprintf(what + used, sizeof(what) - used, "%s%s=%s (%s)",
					 used ? ", " : "", slots[i].key, u[i].final,
					 slots[i].key_file ? "a private key" : u[i].info);
		if (used >= sizeof(what))
			used = sizeof(what) - 1;
	}
	if (web_config_commit_text(r, text, len, what) != 0)
		goto out;
	web_json_obj(&j);
	web_json_kbool(&j, "ok", true);
	web_json_kbool(&j, "restarting", true);
	web_json_key(&j, "stored");
	web_json_arr(&j);
	for (size_t i = 0; i < NSLOTS; i++) {
		if (!u[i].final)
			continue;
		web_json_obj(&j);
		web_json_kstr(&j, "slot", slots[i].field);
		web_json_kstr(&j, "path", u[i].final);
		web_json_kstr(&j, "info", slots[i].key_file ? "a private key" : u[i].info);
		web_json_obj_end(&j);
	}
	web_json_arr_end(&j);
	web_json_obj_end(&j);
	char *o = web_json_finish(&j, &olen);
	web_reply_json(r, 200, o, olen);
	uploads_clear(u, true);
	free(text);
	pthread_mutex_unlock(&r->w->op_lock);
	if (r->env->restart)
		r->env->restart(r->env->restart_ctx);
	return;
out:
	uploads_clear(u, false);
	free(text);
	pthread_mutex_unlock(&r->w->op_lock);
}

void web_handle_certs_delete(struct web_req *r)
{
	const char *dir = r->env->cfg->web.cert_dir, *cfg_path = r->env->cfg->path;
	const char *name = httpform_get(&r->form, "name");
	char why[512], *text = NULL, *next = NULL, *path = NULL, what[512] = "";
	size_t len = 0, nlen = 0, olen = 0;
	bool changed = false;
	struct stat st;

	if (!name || !httpform_safe_filename(name)) {
		web_reply_error(r, 400, "'%.64s' is not the plain name of a file in %s",
				name ? name : "", dir);
		return;
	}
	pthread_mutex_lock(&r->w->op_lock);
	path = join(dir, name);
	if (!path || lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
		web_reply_error(r, 404, "no file %s in %s", name, dir);
		goto out;
	}
	if (yamldoc_read_file(cfg_path, CONFIG_FILE_MAX, &text, &len, why, sizeof(why)) != 0) {
		web_reply_error(r, 500, "%s: %s", cfg_path, why);
		goto out;
	}
	/* A file in use is first taken out of the configuration (checked like any change). */
	for (size_t i = 0; i < NUSERS; i++) {
		char *p = configured(text, len, cfg_path, users[i]);
		bool used = same_file(p, path);
		free(p);
		if (!used)
			continue;
		if (confedit_delete(text, len, users[i], &next, &nlen, why, sizeof(why)) != 0) {
			web_reply_error(r, 422, "%s: %s", users[i], why);
			goto out;
		}
		free(text);
		text = next;
		len = nlen;
		changed = true;
		snprintf(what + strlen(what), sizeof(what) - strlen(what), "%s%s removed",
			 what[0] ? ", " : "", users[i]);
	}
	if (changed) {
		char audit[700];
		snprintf(audit, sizeof(audit), "%s (certificate %s deleted)", what, name);
		if (web_config_commit_text(r, text, len, audit) != 0)
			goto out;
	}
	if (unlink(path) != 0) {
		web_reply_error(r, 500, "cannot delete %s: %s", path, strerror(errno));
		goto out;
	}
	if (!changed)
		web_audit(r, "deleted %s", path);
	struct web_json j = {0};
	web_json_obj(&j);
	web_json_kbool(&j, "ok", true);
	web_json_kbool(&j, "restarting", changed);
	web_json_obj_end(&j);
	char *o = web_json_finish(&j, &olen);
	web_reply_json(r, 200, o, olen);
	if (changed && r->env->restart)
		r->env->restart(r->env->restart_ctx);
out:
	pthread_mutex_unlock(&r->w->op_lock);
	free(path);
	free(text);
}
