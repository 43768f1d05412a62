'use strict';
/* Modbus devices: the router's table (Dev. name/ID, Addr., Command, Start@, Num word/bit,
 * Reg Type, Period), add/edit/delete, Test (reads now through the poller's queue and shows
 * the JSON that would be sent), the optimiser's plan and the bus-time estimate. */
const E = MB.el;
const DEV = [
  { name: 'id', label: 'Dev. name / ID', help: 'sent as "ID"' },
  { name: 'address', label: 'Addr.', help: 'slave id 1..247 (RTU) or host:port (Modbus TCP)' },
  { name: 'serial', label: 'Serial port (RTU)', help: 'a port name; empty with one port' },
  { name: 'unit_id', label: 'Unit id (TCP)', type: 'number' },
  { name: 'command', label: 'Command', type: 'select', options: ['0x03', '0x04', '0x01', '0x02'], default: '0x03' },
  { name: 'start', label: 'Start@', help: 'first address of each block: 10 or 1;10;55' },
  { name: 'count', label: 'Num word/bit', help: 'registers or bits per block: 5 or 1;3;2' },
  { name: 'type', label: 'Reg Type', type: 'select', options: ['word', 'int16', 'uint32', 'int32', 'float32', 'uint64', 'int64', 'float64'], default: 'word' },
  { name: 'period', label: 'Period', help: 'minutes (10) or 500ms, 30s, 10m, 1h', default: '1m' },
  { name: 'byte_order', label: 'Byte order', type: 'select', options: ['ABCD', 'CDAB', 'BADC', 'DCBA'], default: 'ABCD' },
  { name: 'logger', label: 'Logger', type: 'bool', default: 'true' },
  { name: 'timeout_ms', label: 'Time-out ms (TCP)', type: 'number' },
  { name: 'optimize', label: 'Optimise requests', type: 'bool', default: 'true' },
  { name: 'max_per_read', label: 'Max per request', type: 'number' },
  { name: 'retries', label: 'Retries', type: 'number', default: '1' },
  { name: 'backoff_max', label: 'Longest back-off', default: '1m' },
];

function testBox(card, index, id) {
  const out = E('div', { class: 'testout' });
  const btn = E('button', { class: 'plain test', onclick: async () => {
    const name = id() ;
    if (!name) { MB.message(out, 'bad', 'Give the device an id first.'); return; }
    btn.disabled = true;
    MB.message(out, 'info', 'Reading ' + name + '...');
    try {
      const pairs = [['device', name]].concat(MB.changes(card, index === null));
      const r = await MB.api('/api/test', { method: 'POST', body: MB.form(pairs) });
      if (r.diagnostics) { MB.showProblems(card, out, r); return; }
      out.replaceChildren(
        E('div', { class: 'msg ' + (r.ok ? 'ok' : 'bad'), text: r.ok ? 'Read now; this is the message it would send:' : (r.error || 'failed') }),
        r.json ? E('pre', { class: 'testjson', text: r.json }) : null);
    } finally { btn.disabled = false; }
  } }, 'Test');
  return [btn, out];
}

function editor(c, d, i) {
  const isNew = i === null;
  const idx = isNew ? c.devices.length : i;
  const card = E('section', { class: 'card editor' }, E('h2', { text: isNew ? 'Add a device' : 'Edit ' + d.id }),
    MB.fields(DEV, d, 'modbus.devices[' + idx + '].'));
  const out = E('div');
  const idInput = () => card.querySelector('[data-key="modbus.devices[' + idx + '].id"]').value;
  const [tbtn, tout] = testBox(card, isNew ? null : i, idInput);
  card.appendChild(E('div', { class: 'actions' },
    E('button', { class: 'save', onclick: () => MB.save(MB.changes(card, isNew), card, out, render) }, isNew ? 'Add and save' : 'Save'),
    tbtn, E('button', { class: 'plain', onclick: () => card.remove() }, 'Close')));
  card.appendChild(out);
  card.appendChild(tout);
  return card;
}

async function render() {
  const c = await MB.loadConfig();
  const root = MB.$('#page');
  const box = E('div');
  const edit = E('div', { id: 'editor' });
  const rows = c.devices.map((d, i) => {
    const [tbtn, tout] = testBox(E('div'), i, () => d.id);
    return [E('span', { text: d.id }), d.address, d.command, d.start, d.count, d.type, d.period,
      E('span', {}, tbtn, tout),
      E('span', {}, E('button', { class: 'plain', onclick: () => { edit.replaceChildren(editor(c, d, i)); edit.scrollIntoView(); } }, 'Edit'), ' ',
        E('button', { class: 'danger', onclick: () => { if (confirm('Delete device ' + d.id + '?')) MB.save([['del:modbus.devices[' + i + ']', '']], root, box, render); } }, 'Delete'), ' ',
        E('a', { href: '/log?q=' + encodeURIComponent('device ' + d.id), text: 'VIEW LOG' }))];
  });
  root.replaceChildren(box,
    E('section', { class: 'card' },
      c.devices.length ? MB.table(['Dev. name/ID', 'Addr.', 'Command', 'Start@', 'Num word/bit', 'Reg Type', 'Period', 'Test', ''], rows)
        : E('p', { class: 'muted', text: 'No devices yet.' }),
      E('div', { class: 'actions' }, E('button', { id: 'add-device', onclick: () => { edit.replaceChildren(editor(c, {}, null)); } }, 'Add a device'))),
    edit,
    E('section', { class: 'card' }, E('h2', { text: 'Request plan and bus time (as modbridge check prints them)' }), E('pre', { id: 'plan', text: '...' })));
  if (!c.file_valid) MB.showProblems(root, box, { ok: false, error: 'The configuration file has errors:', diagnostics: c.diagnostics });
  const p = await MB.api('/api/plan');
  MB.$('#plan').textContent = p.ok ? (p.plan + (p.warnings ? '\n' + p.warnings : '')) || '(no devices)' : p.error;
}

MB.start(render);
