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

const MODES = { mqtt: 'MQTT', http: 'WEB (HTTP)', ftp: 'FTP' };

/* The readings' uplink (logger.mode), and the MQTT link when it only carries AT commands. */
function uplink(u) {
  const ok = u.state === 'ok' || u.state === 'connected';
  const rows = [
    E('dt', { text: 'Communication mode' }), E('dd', { id: 'uplink-mode', text: MODES[u.mode] || u.mode }),
    E('dt', { text: 'State' }), E('dd', {}, u.state === 'disabled' ? 'disabled'
      : E('span', { id: 'uplink', class: 'pill ' + (ok ? 'ok' : u.state === 'waiting' ? 'wait' : 'bad'), text: u.state })),
    E('dt', { text: u.mode === 'mqtt' ? 'Broker' : 'Sends to' }), E('dd', { text: (u.mode === 'mqtt' ? u.broker : u.target) || '-' }),
    E('dt', { text: 'Last success' }), E('dd', { id: 'uplink-last-ok', text: ago(u.last_success_at) }),
    E('dt', { text: 'Last error' }), E('dd', { id: 'uplink-last-error', text: u.last_error ? u.last_error + (u.last_error_at ? ' (' + ago(u.last_error_at) + ')' : '') : '-' }),
    E('dt', { text: 'Sent' }), E('dd', { text: u.messages + ' messages, ' + u.readings + ' readings; ' + u.failures + ' failed, ' + u.rejected + ' refused' }),
  ];
  if (u.mode !== 'mqtt')
    rows.push(E('dt', { text: 'MQTT (AT commands)' }), E('dd', { text: !u.enabled ? 'disabled' : u.connected ? 'connected to ' + u.broker : 'not connected' + (u.mqtt_last_error ? ': ' + u.mqtt_last_error : '') }));
  return rows;
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
    E('section', { class: 'card' }, E('h2', { text: 'Uplink' }), E('dl', { class: 'kv' }, uplink(u))),
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
