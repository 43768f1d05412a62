/*
 * uplink_mqtt.c - an mqtt_link seen as an uplink; see uplink_mqtt.h.
 *
 * The link reports confirmations by message id, which is exactly the uplink's token. It
 * never reports a failed message: with QoS 1/2 the session resends what was in flight
 * after a reconnection, and with QoS 0 a disconnection loses it (keeps_unconfirmed is false,
 * so the forwarder sends those readings again).
 */
#include "uplink_mqtt.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "error.h"
#include "mqtt.h"
#include "uplink_stats.h"

struct mqtt_uplink {
	struct uplink up; /* first: the uplink handed out is this struct */
	struct mqtt_link *link;
	char *topic;
	int qos;
	char description[300];
	const struct uplink_events *ev;
	void *ctx;
	struct uplink_stats *stats;
	atomic_bool stopping; /* a clean stop's disconnection is no error */
};

static void on_connected(void *ctx)
{
	struct mqtt_uplink *m = ctx;
	if (m->ev && m->ev->connected)
		m->ev->connected(m->ctx);
}

static void on_disconnected(void *ctx)
{
	struct mqtt_uplink *m = ctx;
	if (!atomic_load(&m->stopping))
		uplink_stats_error(m->stats, false,
				   "the connection to the broker was lost (see the log)");
	if (m->ev && m->ev->disconnected)
		m->ev->disconnected(m->ctx);
}

static void on_published(void *ctx, int mid)
{
	struct mqtt_uplink *m = ctx;
	if (m->ev && m->ev->delivered)
		m->ev->delivered(m->ctx, mid);
}

static void mqtt_uplink_bind(void *impl, const struct uplink_events *ev, void *ctx)
{
	struct mqtt_uplink *m = impl;
	m->ev = ev;
	m->ctx = ctx;
}

static int mqtt_uplink_start(void *impl)
{
	struct mqtt_uplink *m = impl;
	return mqtt_link_start(m->link);
}

static int mqtt_uplink_send(void *impl, const struct uplink_message *msg, int *token)
{
	struct mqtt_uplink *m = impl;
	return mqtt_link_publish(m->link, m->topic, msg->payload, msg->len, m->qos, token);
}

static void mqtt_uplink_stop(void *impl)
{
	struct mqtt_uplink *m = impl;
	atomic_store(&m->stopping, true);
	mqtt_link_stop(m->link);
}

static const struct uplink_ops mqtt_uplink_ops = {
	.bind = mqtt_uplink_bind,
	.start = mqtt_uplink_start,
	.send = mqtt_uplink_send,
	.stop = mqtt_uplink_stop,
};

int uplink_mqtt_new(const struct config *cfg, struct uplink **out)
{
	static const struct mqtt_events events = {
		.connected = on_connected,
		.disconnected = on_disconnected,
		.published = on_published,
	};
	struct mqtt_uplink *m = calloc(1, sizeof(*m));
	if (!m)
		return MB_ERR_NOMEM;
	m->qos = cfg->mqtt.qos;
	m->topic = config_subst_imei(cfg->logger.topic, cfg->imei);
	if (!m->topic) {
		free(m);
		return MB_ERR_NOMEM;
	}
	int rc = mqtt_link_new(&cfg->mqtt, cfg->imei, &events, m, &m->link);
	if (rc) {
		free(m->topic);
		free(m);
		return rc;
	}
	snprintf(m->description, sizeof(m->description), "topic '%s' at QoS %d", m->topic, m->qos);
	m->up = (struct uplink){
		.ops = &mqtt_uplink_ops,
		.impl = m,
		.description = m->description,
		.keeps_unconfirmed = m->qos > 0,
	};
	*out = &m->up;
	return 0;
}

void uplink_mqtt_set_stats(struct uplink *up, struct uplink_stats *stats)
{
	((struct mqtt_uplink *)up->impl)->stats = stats;
}

struct mqtt_link *uplink_mqtt_link(struct uplink *up)
{
	return ((struct mqtt_uplink *)up->impl)->link;
}

void uplink_mqtt_free(struct uplink *up)
{
	if (!up)
		return;
	struct mqtt_uplink *m = up->impl;
	atomic_store(&m->stopping, true);
	mqtt_link_stop(m->link);
	mqtt_link_free(m->link);
	free(m->topic);
	free(m);
}
