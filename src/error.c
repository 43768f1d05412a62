/* error.c - text for the project-wide error codes of error.h. */
#include "error.h"

const char *mb_strerror(int code)
{
	switch (code) {
	case MB_OK: return "success";
	case MB_ERR_NOMEM: return "out of memory";
	case MB_ERR_INVAL: return "invalid argument";
	case MB_ERR_IO: return "I/O error";
	case MB_ERR_CONFIG: return "invalid configuration";
	case MB_ERR_MODBUS: return "Modbus transaction failed";
	case MB_ERR_STORE: return "store error";
	case MB_ERR_MQTT: return "MQTT error";
	case MB_ERR_NOTFOUND: return "not found";
	case MB_ERR_TLS: return "TLS error";
	case MB_ERR_DISK_FULL: return "disk full";
	case MB_ERR_READONLY: return "read-only file system or file";
	case MB_ERR_CORRUPT: return "database file is damaged";
	case MB_ERR_BUSY: return "busy";
	case MB_ERR_SCRIPT: return "script failed";
	}
	return "unknown error";
}
