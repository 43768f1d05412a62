/*
 * config_uplink.h - the `http` and `ftp` sections of the configuration: where readings
 * go when logger.mode is http or ftp (the router's "Communication mode" WEB and FTP).
 *
 * What the HTTP and FTP uplinks (uplink_http.c, uplink_ftp.c) consume, filled by the
 * loader (config_http.c, config_ftp.c; docs/configuration.md documents every key). Text
 * holds "[IMEI]" as written. Part of a struct config (config.h): immutable once loaded, so
 * any thread may read it; the loader owns every pointer in it. Paths are resolved against
 * the file's directory and were readable at load time.
 */
#ifndef MODBRIDGE_CONFIG_UPLINK_H
#define MODBRIDGE_CONFIG_UPLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum http_method { HTTP_POST, HTTP_PUT, HTTP_GET };

struct http_header {
	char *name;
	char *value; /* [IMEI] not yet replaced */
};

struct http_config {
	char *url;               /* http:// or https://; NULL when the section is absent */
	bool tls;                /* https:// */
	enum http_method method; /* default post */
	char *query_parameter;   /* get: the parameter holding the message, default "data" */
	struct http_header *headers;
	size_t header_count;
	char *username;     /* basic auth; NULL when blank */
	char *password;     /* never logged */
	char *bearer_token; /* never logged */
	char *ca_file;      /* NULL: the system's CA store */
	char *cert_file;
	char *key_file;
	bool allow_all_certificates;
	int timeout_ms; /* one request, default 10000 */
};

enum ftp_protocol { FTP_PLAIN, FTP_TLS, FTP_SFTP };
enum ftp_format { FTP_JSONL, FTP_ARRAY };

struct ftp_config {
	char *url; /* ftp://, ftps:// (explicit TLS) or sftp://, with the directory; NULL: absent */
	enum ftp_protocol protocol;
	char *username;
	char *password;              /* never logged */
	char *key_file;              /* SFTP: private key; FTPS: the client certificate's key */
	char *known_hosts;           /* SFTP: default ~/.ssh/known_hosts */
	char *ca_file;               /* FTPS */
	char *cert_file;             /* FTPS client certificate */
	bool allow_all_certificates; /* FTPS: no verification; SFTP: no host key check */
	char *file_name;             /* pattern, default "[IMEI]_%Y%m%dT%H%M%SZ.json" */
	int64_t interval_ms;         /* how often a file is cut, default 1 h */
	int max_readings;            /* a file is cut early at this many readings, default 10000 */
	enum ftp_format format;      /* default jsonl */
	int timeout_ms;              /* one upload, default 60000 */
};

#endif
