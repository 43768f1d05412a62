/*
 * uplink_mqtt.h - the MQTT uplink: readings published on the logger topic.
 *
 * Wraps one mqtt_link (mqtt.h) as an uplink (uplink.h). The link is also lent to the remote
 * commands, which subscribe to their AT topics on it before it starts. Message tokens are
 * MQTT message ids; delivery is PUBACK (QoS 1), PUBCOMP (QoS 2) or written to the socket
 * (QoS 0).
 *
 * Threading: created, started, stopped and freed by the daemon's main thread; send() from
 * the forwarder thread; events from the link's network thread.
 */
#ifndef MODBRIDGE_UPLINK_MQTT_H
#define MODBRIDGE_UPLINK_MQTT_H

#include "uplink.h"

struct config;

struct mqtt_link;

/*
 * Creates the link for cfg->mqtt (TLS files checked here: a start-up error) publishing on
 * cfg->logger.topic with [IMEI] replaced. Returns 0 and *out, or a negative mb_error.
 * cfg must outlive the uplink.
 */
int uplink_mqtt_new(const struct config *cfg, struct uplink **out);

/* Records lost connections as the last error in stats (uplink_stats.h; borrowed, may be
 * NULL). Before the uplink starts. */
struct uplink_stats;
void uplink_mqtt_set_stats(struct uplink *up, struct uplink_stats *stats);

/* The MQTT link, for the remote commands. Valid until uplink_mqtt_free. */
struct mqtt_link *uplink_mqtt_link(struct uplink *up);

/* Stops (if still running) and frees. Accepts NULL. */
void uplink_mqtt_free(struct uplink *up);

#endif
