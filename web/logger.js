'use strict';
/* Logger: id, send mode, time format, array and the rest, with the uplink settings. */
const E = MB.el;
const LOGGER = [
  { name: 'id', label: 'Logger id', help: 'sent as "P"' },
  { name: 'mode', label: 'Uplink mode', type: 'select', options: ['mqtt'], readonly: true, help: 'HTTP and FTP uplinks are not available yet' },
  { name: 'send_mode', label: 'Send mode', type: 'select', options: ['fifo', 'lifo'] },
  { name: 'time_format', label: 'Time format', type: 'select', options: ['iso8601', 'unix'] },
  { name: 'array', label: 'Use array', type: 'bool' },
  { name: 'array_max_count', label: 'Array: most messages', type: 'number' },
  { name: 'array_max_bytes', label: 'Array: most bytes', type: 'number' },
  { name: 'error_messages', label: 'Send ERR messages', type: 'bool' },
  { name: 'topic', label: 'Topic', help: '[IMEI] is replaced by the identity' },
  { name: 'store', label: 'Store file' },
  { name: 'inflight_window', label: 'Messages in flight', type: 'number' },
  { name: 'max_messages', label: 'Store: most readings (0: no limit)', type: 'number' },
  { name: 'max_bytes', label: 'Store: most bytes (0: no limit)', type: 'number' },
  { name: 'full_policy', label: 'When full', type: 'select', options: ['drop_oldest', 'drop_newest'] },
  { name: 'memory_max_messages', label: 'Memory buffer: readings', type: 'number' },
  { name: 'memory_max_bytes', label: 'Memory buffer: bytes', type: 'number' },
];
const UPLINK = [
  { name: 'enabled', label: 'MQTT enabled', type: 'bool' },
  { name: 'broker', label: 'Broker', placeholder: 'ssl://broker.example.com:8883' },
];

async function render() {
  const c = await MB.loadConfig();
  const root = MB.$('#page');
  const out = E('div');
  const gw = [{ name: 'imei', label: 'Identity (IMEI)', help: 'empty: the modem\'s IMEI or the host name (' + c.gateway.identity + ')' }];
  const form = E('div', {},
    E('section', { class: 'card' }, E('h2', { text: 'Gateway' }), MB.fields(gw, c.gateway, 'gateway.')),
    E('section', { class: 'card' }, E('h2', { text: 'Logger' }), MB.fields(LOGGER, c.logger, 'logger.')),
    E('section', { class: 'card' }, E('h2', { text: 'Uplink' }), MB.fields(UPLINK, c.mqtt, 'mqtt.'),
      E('p', {}, E('a', { href: '/mqtt', text: 'All MQTT client settings' }))));
  root.replaceChildren(form, E('div', { class: 'actions' },
    E('button', { id: 'save', onclick: () => MB.save(MB.changes(form), form, out, render) }, 'Save')), out);
}

MB.start(render);
