'use strict';
/* Certificates: upload the CA, client certificate and key; subject, expiry, SHA-1. */
const E = MB.el;

async function render() {
  const c = await MB.api('/api/certs');
  const root = MB.$('#page');
  const out = E('div');
  const names = { ca: 'CA certificate', cert: 'Client certificate', key: 'Client key' };
  const slots = Object.keys(names).map(s => {
    const v = c.slots[s];
    return [names[s], v ? E('span', { text: v.path }) : '-', v ? E('span', { class: 'info', 'data-slot': s, text: v.info }) : 'not set'];
  });
  const upload = E('form', { id: 'upload' },
    E('div', { class: 'grid' }, Object.keys(names).map(s => E('div', { class: 'field' },
      E('label', { for: 'f-' + s, text: names[s] }), E('input', { type: 'file', id: 'f-' + s, name: s, accept: '.pem,.crt,.cer,.key' })))),
    E('div', { class: 'actions' }, E('button', { type: 'submit', id: 'do-upload' }, 'Upload')));
  upload.addEventListener('submit', async ev => {
    ev.preventDefault();
    const fd = new FormData(upload);
    MB.message(out, 'info', 'Uploading...');
    const r = await MB.api('/api/certs', { method: 'POST', body: fd });
    if (!r.ok) { MB.showProblems(upload, out, r); return; }
    MB.message(out, 'ok', 'Stored and saved in the configuration; the gateway restarts with it.');
    await MB.waitRestart();
    await render();
    MB.message(MB.$('#status-msg'), 'ok', 'Stored: ' + r.stored.map(s => s.path).join(', '));
  });
  const files = c.files.map(f => [E('span', { text: f.name }), f.kind, E('span', { class: 'info', text: f.info }),
    f.used_by.join(', ') || '-',
    E('button', { class: 'danger', onclick: async () => {
      if (!confirm('Delete ' + f.name + (f.used_by.length ? ' (it is removed from ' + f.used_by.join(', ') + ')' : '') + '?')) return;
      const r = await MB.api('/api/certs/delete', { method: 'POST', body: MB.form([['name', f.name]]) });
      if (!r.ok) { MB.showProblems(root, out, r); return; }
      if (r.restarting) await MB.waitRestart();
      render();
    } }, 'Delete')]);
  root.replaceChildren(E('div', { id: 'status-msg' }),
    E('section', { class: 'card' }, E('h2', { text: 'In use by the MQTT client' }), MB.table(['', 'File', 'Subject, expiry, SHA-1 fingerprint'], slots),
      c.pair_ok === false ? E('div', { class: 'msg bad', text: 'The client key does not belong to the client certificate.' }) : null),
    E('section', { class: 'card' }, E('h2', { text: 'Upload' }), E('p', { class: 'muted', text: 'PEM files of up to 64 KB. Each is checked before it is stored (a key must belong to its certificate), then set in the MQTT client settings.' }), upload, out),
    E('section', { class: 'card' }, E('h2', { text: 'Stored in ' + c.dir }),
      files.length ? MB.table(['Name', 'Kind', 'Details', 'Used by', ''], files) : E('p', { class: 'muted', text: 'Nothing uploaded yet.' })));
}

MB.start(render);
