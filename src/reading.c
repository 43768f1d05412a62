/* reading.c - freeing what a reading holds; see reading.h. */
#include "reading.h"

#include <stdlib.h>

void reading_clear(struct reading *r)
{
	if (!r)
		return;
	free(r->values);
	r->values = NULL;
	r->value_count = 0;
	free(r->decoded);
	r->decoded = NULL;
	r->decoded_count = 0;
}
