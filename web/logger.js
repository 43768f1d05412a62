'use strict';
/* Logger: id, send mode, time format, array and the rest, and the router's "Communication
 * mode" (MQTT, WEB (HTTP), FTP) with the settings of the chosen uplink. */
const E = MB.el;
const LOGGER = [
  { name: 'id', label: 'Logger id', help: 'sent as "P"' },
  { name: 'mode', label: 'Communication mode', type: 'select', options: [['mqtt', 'MQTT'], ['http', 'WEB (HTTP)'], ['ftp', 'FTP']],
    help: 'where the readings go; the MQTT client keeps serving the AT commands in every mode' },
  { name: 'send_mode', label: 'Send mode', type: 'select', options: ['fifo', 'lifo'] },
  { name: 'time_format', label: 'Time format', type: 'select', options: ['iso8601', 'unix'] },
  { name: 'array', label: 'Use array', type: 'bool' },
  { name: 'array_max_count', label: 'Array: most messages', type: 'number' },
  { name: 'array_max_bytes', label: 'Array: most bytes', type: 'number' },
  { name: 'error_messages', label: 'Send ERR messages', type: 'bool' },
  { name: 'topic', label: 'MQTT topic', help: '[IMEI] is replaced by the identity' },
  { name: 'store', label: 'Store file' },
  { name: 'inflight_window', label: 'Messages in flight', type: 'number' },
  { name: 'max_messages', label: 'Store: most readings (0: no limit)', type: 'number' },
  { name: 'max_bytes', label: 'Store: most bytes (0: no limit)', type: 'number' },
  { name: 'full_policy', label: 'When full', type: 'select', options: ['drop_oldest', 'drop_newest'] },
  { name: 'memory_max_messages', label: 'Memory buffer: readings', type: 'number' },
  { name: 'memory_max_bytes', label: 'Memory buffer: bytes', type: 'number' },
];
const MQTT = [
  { name: 'enabled', label: 'MQTT enabled', type: 'bool' },
  { name: 'broker', label: 'Broker', placeholder: 'ssl://broker.example.com:8883' },
];

/* Certificate and key files: one of the uploaded files (Certificates page), or none. */
function fileField(name, label, files, help) {
  return { name: name, label: label, type: 'select', help: help,
    options: [['', '(none)']].concat(files.map(f => [f.path, f.name + ' (' + f.kind + ')'])) };
}

function http(files) {
  return [
    { name: 'url', label: 'URL', placeholder: 'https://collector.example.com/readings' },
    { name: 'method', label: 'Method', type: 'select', options: ['post', 'put', 'get'], help: 'get: one reading per request, in the query parameter' },
    { name: 'query_parameter', label: 'Query parameter (get)' },
    { name: 'username', label: 'User name (basic auth)' },
    { name: 'password', label: 'Password', type: 'secret' },
    { name: 'bearer_token', label: 'Bearer token', type: 'secret', help: 'instead of a user name and password' },
    fileField('ca_file', 'CA file (https)', files, 'none: the system\'s CA store; upload on the Certificates page'),
    fileField('cert_file', 'Client certificate (https)', files),
    fileField('key_file', 'Client key (https)', files),
    { name: 'allow_all_certificates', label: 'Allow all certificates (tests only)', type: 'bool' },
    { name: 'timeout_ms', label: 'Time-out of a request (ms)', type: 'number' },
  ];
}

function ftp(files) {
  return [
    { name: 'url', label: 'URL and directory', placeholder: 'ftps://ftp.example.com/incoming/', help: 'ftp://, ftps:// or sftp://' },
    { name: 'username', label: 'User name' },
    { name: 'password', label: 'Password', type: 'secret' },
    fileField('ca_file', 'CA file (ftps)', files),
    fileField('cert_file', 'Client certificate (ftps)', files),
    fileField('key_file', 'Key file (ftps client key, or sftp key)', files),
    { name: 'known_hosts', label: 'known_hosts (sftp)' },
    { name: 'allow_all_certificates', label: 'Allow all certificates / host keys (tests only)', type: 'bool' },
    { name: 'file_name', label: 'File name', help: '[IMEI], [ID] and strftime fields, in UTC' },
    { name: 'interval', label: 'A file every', help: 'bare minutes, 30s, 1h, 1d' },
    { name: 'max_readings', label: 'Most readings in a file', type: 'number' },
    { name: 'format', label: 'Format', type: 'select', options: ['jsonl', 'array'] },
    { name: 'timeout_ms', label: 'Time-out of an upload (ms)', type: 'number' },
  ];
}

async function render() {
  const c = await MB.loadConfig();
  const certs = await MB.api('/api/certs');
  const files = (certs.files || []).filter(f => f.kind !== 'unusable').map(f => ({ name: f.name, kind: f.kind, path: certs.dir + '/' + f.name }));
  const root = MB.$('#page');
  const out = E('div');
  const gw = [{ name: 'imei', label: 'Identity (IMEI)', help: 'empty: the modem\'s IMEI or the host name (' + c.gateway.identity + ')' }];
  const headers = c.http.header_names.length
    ? 'Extra headers: ' + c.http.header_names.join(', ') + ' (values not shown; edited in the configuration file).'
    : 'Extra headers (http.headers) are set in the configuration file.';
  const cards = {
    mqtt: E('section', { class: 'card', id: 'uplink-mqtt' }, E('h2', { text: 'Uplink: MQTT' }), MB.fields(MQTT, c.mqtt, 'mqtt.'),
      E('p', {}, E('a', { href: '/mqtt', text: 'All MQTT client settings' }))),
    http: E('section', { class: 'card', id: 'uplink-http' }, E('h2', { text: 'Uplink: WEB (HTTP)' }), MB.fields(http(files), c.http, 'http.'),
      E('p', { class: 'muted', text: headers })),
    ftp: E('section', { class: 'card', id: 'uplink-ftp' }, E('h2', { text: 'Uplink: FTP' }), MB.fields(ftp(files), c.ftp, 'ftp.')),
  };
  const logger = MB.fields(LOGGER, c.logger, 'logger.');
  const form = E('div', {},
    E('section', { class: 'card' }, E('h2', { text: 'Gateway' }), MB.fields(gw, c.gateway, 'gateway.')),
    E('section', { class: 'card' }, E('h2', { text: 'Logger' }), logger),
    cards.mqtt, cards.http, cards.ftp);
  /* The chosen mode's settings only; the others stay in the file as they are. */
  const mode = MB.$('[data-key="logger.mode"]', logger);
  const show = () => { for (const [m, card] of Object.entries(cards)) card.hidden = m !== mode.value; };
  mode.addEventListener('change', show);
  show();
  root.replaceChildren(form, E('div', { class: 'actions' },
    E('button', { id: 'save', onclick: () => MB.save(MB.changes(form), form, out, render) }, 'Save')), out);
}

MB.start(render);
