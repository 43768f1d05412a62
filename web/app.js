/* modbridge web UI: what every page shares. Plain JavaScript, no framework, no build step.
 * Text from the gateway is only ever put into the page as text (textContent), never HTML. */
'use strict';
const MB = {};

MB.pages = [['status', 'Status'], ['serial', 'Serial ports'], ['devices', 'Modbus devices'],
  ['logger', 'Logger'], ['mqtt', 'MQTT client'], ['certs', 'Certificates'],
  ['console', 'AT console'], ['log', 'Log']];

/* el('div', {class: 'x', onclick: f}, 'text', child, ...) */
MB.el = function (tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of kids.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return e;
};
MB.$ = (sel, root) => (root || document).querySelector(sel);

MB.api = async function (path, opts) {
  opts = opts || {};
  const init = { method: opts.method || 'GET', credentials: 'same-origin', headers: { 'Accept': 'application/json' } };
  if (init.method !== 'GET') {
    init.headers['X-CSRF-Token'] = MB.session ? MB.session.csrf : '';
    init.body = opts.body;
  }
  const res = await fetch(path, init);
  if (res.status === 401) { location.href = '/login'; throw new Error('not logged in'); }
  let data;
  try { data = await res.json(); } catch (e) { data = { ok: false, error: 'HTTP ' + res.status }; }
  data.status = res.status;
  return data;
};

MB.form = function (pairs) {
  const p = new URLSearchParams();
  for (const [k, v] of pairs) p.append(k, v);
  return p;
};

MB.message = function (box, kind, text) {
  box.replaceChildren(MB.el('div', { class: 'msg ' + kind, text: text }));
};

/* ---- forms: fields carry their configuration key; changes are what differs from the file */
/* A field: {name, label, type: 'text'|'number'|'select'|'bool'|'secret', options: [value or [value, label]], help} */
MB.fields = function (schema, values, prefix) {
  const grid = MB.el('div', { class: 'grid' });
  for (const f of schema) {
    const key = prefix + f.name;
    let v = values && values[f.name] !== undefined && values[f.name] !== null ? String(values[f.name]) : (f.default || '');
    let input;
    if (f.type === 'select' || f.type === 'bool') {
      /* An option is a value, or [value, label]. */
      const opts = (f.type === 'bool' ? ['true', 'false'] : f.options).map(o => Array.isArray(o) ? o : [o, o]);
      input = MB.el('select', {}, opts.map(([o, t]) => MB.el('option', { value: o, text: t })));
      if (v !== '' && !opts.some(([o]) => o === v)) input.appendChild(MB.el('option', { value: v, text: v }));
      input.value = v;
    } else if (f.type === 'secret') {
      input = MB.el('input', { type: 'password', autocomplete: 'new-password',
        placeholder: values && values[f.name + '_set'] ? '(set: leave empty to keep it)' : '(not set)' });
      v = '';
    } else {
      input = MB.el('input', { type: 'text', inputmode: f.type === 'number' ? 'numeric' : null, placeholder: f.placeholder || '' });
      input.value = v;
    }
    input.dataset.key = key;
    input.dataset.initial = v;
    if (f.readonly) input.disabled = true;
    input.addEventListener('input', () => input.classList.toggle('changed', input.value !== input.dataset.initial));
    input.addEventListener('change', () => input.classList.toggle('changed', input.value !== input.dataset.initial));
    const field = MB.el('div', { class: 'field' },
      MB.el('label', {}, f.label + ' ', MB.el('span', { class: 'key', text: key })), input,
      f.help ? MB.el('div', { class: 'muted', text: f.help }) : null);
    if (f.type === 'secret')
      field.appendChild(MB.el('label', {}, MB.el('input', { type: 'checkbox', 'data-clear': key, class: 'clearbox' }), ' remove it'));
    grid.appendChild(field);
  }
  return grid;
};

/* [[key, value]] of the inputs under root that differ from the file, plus removals. */
MB.changes = function (root, all) {
  const out = [];
  root.querySelectorAll('[data-key]').forEach(i => {
    if (i.disabled) return;
    if (all ? i.value !== '' : i.value !== i.dataset.initial) out.push(['set:' + i.dataset.key, i.value]);
  });
  root.querySelectorAll('[data-clear]').forEach(c => { if (c.checked) out.push(['del:' + c.dataset.clear, '']); });
  return out;
};

MB.clearErrors = function (root) {
  root.querySelectorAll('.err').forEach(e => e.remove());
  root.querySelectorAll('.field.bad').forEach(e => e.classList.remove('bad'));
};

/* Puts each problem next to the field of its key; the rest into box. */
MB.showProblems = function (root, box, data) {
  MB.clearErrors(root);
  const rest = [];
  for (const d of data.diagnostics || []) {
    const input = d.key ? root.querySelector('[data-key="' + CSS.escape(d.key) + '"]') : null;
    if (input && !d.warning) {
      input.closest('.field').classList.add('bad');
      input.closest('.field').appendChild(MB.el('div', { class: 'err', text: d.message }));
    } else {
      rest.push((d.warning ? 'warning: ' : '') + (d.key ? d.key + ': ' : '') + d.message + (d.line ? ' (line ' + d.line + ')' : ''));
    }
  }
  const kids = [MB.el('div', { text: data.error || (data.ok ? 'saved' : 'not saved') })];
  if (rest.length) kids.push(MB.el('ul', {}, rest.map(t => MB.el('li', { text: t }))));
  box.replaceChildren(MB.el('div', { class: 'msg ' + (data.ok ? 'ok' : 'bad') }, kids));
};

/* Saves changes (pairs) against the file's version; shows problems; after a save, waits for
 * the gateway to restart with it and calls done(). */
MB.save = async function (pairs, root, box, done) {
  if (!pairs.length) { MB.message(box, 'info', 'Nothing changed.'); return; }
  MB.message(box, 'info', 'Saving...');
  const data = await MB.api('/api/config', { method: 'POST', body: MB.form([['version', MB.version]].concat(pairs)) });
  if (!data.ok) { MB.showProblems(root, box, data); return false; }
  MB.clearErrors(root);
  const said = data.changed ? 'Saved (the previous file is kept as .bak); the gateway restarted with it.' : 'Nothing changed.';
  MB.message(box, 'ok', data.changed ? 'Saved; the gateway restarts with it...' : said);
  if (data.changed) await MB.waitRestart();
  if (done) await done();
  MB.flash('ok', said);
  return true;
};

/* A restart takes a moment: the API answers again once the gateway runs with the new file. */
MB.waitRestart = async function () {
  await new Promise(r => setTimeout(r, 800));
  for (let i = 0; i < 30; i++) {
    try { const s = await MB.api('/api/session'); if (s.ok) return; } catch (e) { /* retry */ }
    await new Promise(r => setTimeout(r, 500));
  }
};

MB.loadConfig = async function () {
  const c = await MB.api('/api/config');
  MB.version = c.version;
  MB.config = c;
  return c;
};

/* A table from rows of cells (strings or elements). */
MB.table = function (heads, rows) {
  return MB.el('div', { class: 'tablewrap' }, MB.el('table', {},
    MB.el('thead', {}, MB.el('tr', {}, heads.map(h => MB.el('th', { text: h })))),
    MB.el('tbody', {}, rows.map(r => MB.el('tr', {}, r.map(c => MB.el('td', {}, c)))))));
};

/* A message that stays above the page when the page is drawn again. */
MB.flash = function (kind, text) {
  let f = MB.$('#flash');
  if (!f) { f = MB.el('div', { id: 'flash' }); MB.$('main').prepend(f); }
  MB.message(f, kind, text);
};

MB.header = function () {
  const page = document.body.dataset.page;
  const logout = MB.el('form', { method: 'post', action: '/logout' },
    MB.el('input', { type: 'hidden', name: 'csrf', value: MB.session.csrf }),
    MB.el('button', { class: 'plain', type: 'submit', id: 'logout' }, 'Log out'));
  MB.$('header').replaceChildren(
    MB.el('span', { class: 'brand', text: 'modbridge' }),
    MB.el('nav', {}, MB.pages.map(([p, t]) => MB.el('a', { href: '/' + p, class: p === page ? 'on' : null, text: t }))),
    MB.el('span', { class: 'who' }, MB.el('span', { text: MB.session.identity + ' · ' + MB.session.user }), logout));
};

MB.start = async function (init) {
  MB.session = await MB.api('/api/session');
  MB.header();
  await init();
};
