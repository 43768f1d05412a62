'use strict';
/* Serial ports: the router's Com settings, one form per port. */
const E = MB.el;
const BAUDS = ['1200', '2400', '4800', '9600', '19200', '38400', '57600', '115200', '230400', '460800', '921600'];
const PORT = [
  { name: 'name', label: 'Name', help: 'what devices refer to, such as com2' },
  { name: 'device', label: 'Device', placeholder: '/dev/ttyS1' },
  { name: 'baudrate', label: 'Baud rate', type: 'select', options: BAUDS, default: '9600' },
  { name: 'data_bits', label: 'Data bits', type: 'select', options: ['8', '7'], default: '8' },
  { name: 'parity', label: 'Parity', type: 'select', options: ['none', 'even', 'odd'], default: 'none' },
  { name: 'stop_bits', label: 'Stop bits', type: 'select', options: ['1', '2'], default: '1' },
  { name: 'timeout_ms', label: 'Response time-out (ms)', type: 'number', default: '1000' },
  { name: 'byte_timeout_ms', label: 'Timeout ms (end of frame)', type: 'number', default: '50' },
  { name: 'silent_interval_ms', label: 'Silent interval (ms or auto)', default: 'auto' },
  { name: 'turnaround_ms', label: 'Turnaround (ms)', type: 'number', default: '5' },
];

async function render() {
  const c = await MB.loadConfig();
  const root = MB.$('#page');
  root.replaceChildren();
  const box = E('div');
  root.appendChild(box);
  c.serial.forEach((p, i) => {
    const card = E('section', { class: 'card' }, E('h2', { text: 'Port ' + p.name }), MB.fields(PORT, p, 'serial[' + i + '].'));
    const out = E('div');
    card.appendChild(E('div', { class: 'actions' },
      E('button', { onclick: () => MB.save(MB.changes(card), card, out, render) }, 'Save'),
      E('button', { class: 'danger', onclick: () => { if (confirm('Delete port ' + p.name + '?')) MB.save([['del:serial[' + i + ']', '']], card, out, render); } }, 'Delete')));
    card.appendChild(out);
    root.appendChild(card);
  });
  const n = c.serial.length;
  const add = E('section', { class: 'card' }, E('h2', { text: 'Add a port' }), MB.fields(PORT, {}, 'serial[' + n + '].'));
  const out = E('div');
  add.appendChild(E('div', { class: 'actions' }, E('button', { id: 'add-port', onclick: () => MB.save(MB.changes(add, true), add, out, render) }, 'Add')));
  add.appendChild(out);
  root.appendChild(add);
  if (!c.file_valid) MB.showProblems(root, box, { ok: false, error: 'The configuration file has errors:', diagnostics: c.diagnostics });
}

MB.start(render);
