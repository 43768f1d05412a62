'use strict';
/* Status: identity, uplink, backlog and each device's health and last values, refreshed. */
const E = MB.el;

function ago(iso) {
  if (!iso) return '-';
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') + (s >= 0 ? ' (' + (s < 120 ? s + ' s' : Math.round(s / 60) + ' min') + ' ago)' : '');
}

function uptime(s) {
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return (d ? d + ' d ' : '') + (d || h ? h + ' h ' : '') + m + ' min ' + (s % 60) + ' s';
}

function values(msg) {
  if (!msg) return '-';
  if (msg.V) return JSON.stringify(msg.V);
  return msg.ERR ? 'ERR: ' + msg.ERR : '-';
}

function health(h) {
  const cls = h === 'ok' ? 'ok' : h === 'failing' ? 'bad' : 'wait';
  return E('span', { class: 'pill ' + cls, text: h });
}

async function refresh() {
  const s = await MB.api('/api/status');
  const root = MB.$('#page');
  if (!s.ok) { MB.message(root, 'bad', s.error); return; }
  const u = s.uplink, b = s.backlog;
  root.replaceChildren(
    E('section', { class: 'card' }, E('h2', { text: 'Gateway' }), E('dl', { class: 'kv' },
      E('dt', { text: 'Identity (IMEI)' }), E('dd', { id: 'identity', text: s.identity }),
      E('dt', { text: 'Version' }), E('dd', { text: 'modbridge ' + s.version }),
      E('dt', { text: 'Up since' }), E('dd', { text: ago(s.started) + ' · ' + uptime(s.uptime_s) }))),
    E('section', { class: 'card' }, E('h2', { text: 'Uplink' }), E('dl', { class: 'kv' },
      E('dt', { text: 'MQTT' }), E('dd', {}, u.enabled ? E('span', { id: 'uplink', class: 'pill ' + (u.connected ? 'ok' : 'bad'), text: u.connected ? 'connected' : 'not connected' }) : 'disabled'),
      E('dt', { text: 'Broker' }), E('dd', { text: u.broker || '-' }),
      E('dt', { text: 'Last error' }), E('dd', { text: u.last_error ? u.last_error + (u.last_error_at ? ' (' + ago(u.last_error_at) + ')' : '') : '-' }))),
    E('section', { class: 'card' }, E('h2', { text: 'Backlog' }), b.error ? E('div', { class: 'msg bad', text: b.error }) : E('dl', { class: 'kv' },
      E('dt', { text: 'Readings waiting' }), E('dd', { id: 'backlog', text: String(b.count) }),
      E('dt', { text: 'Oldest' }), E('dd', { text: ago(b.oldest) }),
      E('dt', { text: 'Sent' }), E('dd', { text: String(b.sent) }),
      E('dt', { text: 'Dropped' }), E('dd', { text: String(b.dropped) }))),
    E('section', { class: 'card' }, E('h2', { text: 'Devices' }),
      s.devices.length ? MB.table(['Device', 'Address', 'Health', 'Last read', 'Last values', 'Last error', 'Polls failed'],
        s.devices.map(d => [E('span', { text: d.id }), d.address, health(d.health), ago(d.last_ok || d.last_read),
          E('span', { class: 'values', 'data-device': d.id, text: values(d.last_message) }), d.last_error || '-',
          d.polled ? d.failures + ' of ' + d.reads : '-'])) : E('p', { class: 'muted', text: 'No devices: add them on the Modbus devices page.' })),
    E('p', { class: 'muted', text: 'Refreshed every 2 s · ' + s.now }));
}

MB.start(async () => {
  await refresh();
  setInterval(() => { if (!document.hidden) refresh().catch(() => {}); }, 2000);
});
