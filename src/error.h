/*
 * error.h - project-wide error codes.
 *
 * Every function that can fail returns 0 on success or one of these negative codes.
 * Wrappers around third-party libraries translate the library's own error into one of
 * these and log the library's message once, where it happened.
 */
#ifndef MODBRIDGE_ERROR_H
#define MODBRIDGE_ERROR_H

enum mb_error {
	MB_OK = 0,
	MB_ERR_NOMEM = -1,      /* allocation failed */
	MB_ERR_INVAL = -2,      /* invalid argument or input */
	MB_ERR_IO = -3,         /* file or device I/O failed */
	MB_ERR_CONFIG = -4,     /* configuration is invalid */
	MB_ERR_MODBUS = -5,     /* Modbus transaction failed (reason given separately) */
	MB_ERR_STORE = -6,      /* the store (SQLite) failed */
	MB_ERR_MQTT = -7,       /* MQTT client failed */
	MB_ERR_NOTFOUND = -8,   /* no such item */
	MB_ERR_TLS = -9,        /* certificate or key problem */
	MB_ERR_DISK_FULL = -10, /* no space left for the store */
	MB_ERR_READONLY = -11,  /* the store's file system or file is read-only */
	MB_ERR_CORRUPT = -12,   /* the store file is damaged or not a database */
	MB_ERR_BUSY = -13,      /* not done: waited too long for its turn, or shutting down */
	MB_ERR_SCRIPT = -14,    /* a user script failed (erred, looped, out of its memory) */
};

/* Returns a static, human-readable description of an mb_error code. */
const char *mb_strerror(int code);

#endif
