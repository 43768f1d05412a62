'use strict';
/* MQTT client: broker, credentials (write-only), client id, QoS, keepalive, persistence,
 * TLS files and the AT topic pairs. */
const E = MB.el;
const MQTT = [
  { name: 'enabled', label: 'Enabled', type: 'bool' },
  { name: 'broker', label: 'Broker', placeholder: 'ssl://broker.example.com:8883' },
  { name: 'username', label: 'User name', type: 'secret' },
  { name: 'password', label: 'Password', type: 'secret' },
  { name: 'client_id', label: 'Client id', help: '[IMEI] is replaced by the identity' },
  { name: 'qos', label: 'QoS', type: 'select', options: ['0', '1', '2'] },
  { name: 'keepalive', label: 'Keepalive (s)', type: 'number' },
  { name: 'persistence', label: 'Persistent session', type: 'bool' },
  { name: 'ca_file', label: 'CA file', help: 'upload on the Certificates page' },
  { name: 'cert_file', label: 'Client certificate' },
  { name: 'key_file', label: 'Client key' },
  { name: 'allow_all_certificates', label: 'Allow all certificates (tests only)', type: 'bool' },
  { name: 'status_topic', label: 'Status topic' },
];
const PAIR = [{ name: 'topic', label: 'Command topic' }, { name: 'response', label: 'Response topic' }];

async function render() {
  const c = await MB.loadConfig();
  const root = MB.$('#page');
  const out = E('div');
  const form = E('section', { class: 'card' }, MB.fields(MQTT, c.mqtt, 'mqtt.'));
  root.replaceChildren(form, E('div', { class: 'actions' },
    E('button', { id: 'save', onclick: () => MB.save(MB.changes(form), form, out, render) }, 'Save')), out);
  const pairs = E('section', { class: 'card' }, E('h2', { text: 'AT topic pairs' }));
  c.mqtt.at_topics.forEach((p, i) => {
    const f = E('div', {}, MB.fields(PAIR, p, 'mqtt.at_topics[' + i + '].'));
    const o = E('div');
    f.appendChild(E('div', { class: 'actions' },
      E('button', { class: 'plain', onclick: () => MB.save(MB.changes(f), f, o, render) }, 'Save pair'),
      E('button', { class: 'danger', onclick: () => MB.save([['del:mqtt.at_topics[' + i + ']', '']], f, o, render) }, 'Delete pair')), o);
    pairs.appendChild(f);
  });
  if (c.mqtt.at_topics.length < 3) {
    const n = c.mqtt.at_topics.length;
    const f = E('div', {}, E('h2', { text: 'Add a pair' }), MB.fields(PAIR, {}, 'mqtt.at_topics[' + n + '].'));
    const o = E('div');
    f.appendChild(E('div', { class: 'actions' }, E('button', { class: 'plain', onclick: () => MB.save(MB.changes(f, true), f, o, render) }, 'Add pair')), o);
    pairs.appendChild(f);
  }
  pairs.appendChild(E('p', { class: 'muted', text: 'Remote permissions (allow_writes, allow_setparam, ...) are changed in the file on the gateway only.' }));
  root.appendChild(pairs);
}

MB.start(render);
