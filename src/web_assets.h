/*
 * web_assets.h - the table of the web UI's embedded files, for the generated web_assets.c
 * (scripts/embed.cmake). web_internal.h declares the same table for the web UI's files.
 */
#ifndef MODBRIDGE_WEB_ASSETS_H
#define MODBRIDGE_WEB_ASSETS_H

#include <stddef.h>

struct web_asset {
	const char *name;
	const unsigned char *data;
	size_t len;
};
extern const struct web_asset web_assets[];

#endif
