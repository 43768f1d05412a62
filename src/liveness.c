/*
 * liveness.c - the calling thread's own liveness, and thread names; see liveness.h.
 */
#include "liveness.h"

#include <string.h>
#include <sys/prctl.h>

static _Thread_local struct liveness *current;

void liveness_attach(struct liveness *l)
{
	current = l;
	liveness_beat(l);
}

void liveness_beat_current(void)
{
	if (current)
		liveness_beat(current);
}

void thread_set_name(const char *name)
{
	char cut[16];

	/* prctl rather than pthread_setname_np: no _GNU_SOURCE for one call. The kernel
	 * keeps 15 bytes and a NUL; cutting here keeps the result predictable. */
	strncpy(cut, name, sizeof(cut) - 1);
	cut[sizeof(cut) - 1] = '\0';
	(void)prctl(PR_SET_NAME, (unsigned long)cut, 0UL, 0UL, 0UL);
}
