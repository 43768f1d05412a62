/*
 * topic.h - MQTT topic rules: what may be published to, what may be subscribed to, and
 * which topics a subscription filter matches (MQTT 3.1.1 section 4.7; MQTT 5 is the same).
 *
 * The configuration loader checks its topics and filters with these rules at load time,
 * and the remote commands use the same matcher on what arrives, so the two can never
 * disagree. No dependencies, no state: any thread may call them.
 */
#ifndef MODBRIDGE_TOPIC_H
#define MODBRIDGE_TOPIC_H

#include <stdbool.h>

/* The longest topic or filter MQTT can carry (a two-byte length). */
#define TOPIC_MAX_LEN 65535

/*
 * True when filter matches topic: '+' matches one level, '#' the rest, including the
 * parent level itself ("a/#" matches "a"). A filter that starts with a wildcard does not
 * match topics starting with '$' (the broker's own, such as $SYS). False when the filter
 * is not a valid filter or the topic holds a wildcard; NULL matches nothing.
 */
bool topic_matches(const char *filter, const char *topic);

/* True when topic can be published to: not empty, no wildcards, at most TOPIC_MAX_LEN
 * bytes, valid UTF-8 without the characters MQTT forbids. NULL is not. */
bool topic_publishable(const char *topic);

/* "" when t is a valid topic to publish to in the configuration, else the reason. */
const char *topic_publish_problem(const char *t);

/* "" when t is a valid subscription filter in the configuration, else the reason. */
const char *topic_filter_problem(const char *t);

#endif
