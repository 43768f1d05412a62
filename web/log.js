'use strict';
/* Log: the daemon's recent lines, filterable by level and text. */
const E = MB.el;
let timer = null;

MB.start(async () => {
  const root = MB.$('#page');
  const q = new URLSearchParams(location.search).get('q') || '';
  const level = E('select', { id: 'level' }, ['debug', 'info', 'warning', 'error'].map(l => E('option', { value: l, text: l })));
  level.value = 'info';
  const text = E('input', { id: 'filter', placeholder: 'text filter' });
  text.value = q;
  const body = E('tbody');
  root.replaceChildren(E('section', { class: 'card' }, E('div', { class: 'grid' },
    E('div', {}, E('label', { for: 'level', text: 'Level and above' }), level),
    E('div', {}, E('label', { for: 'filter', text: 'Containing' }), text))),
  E('div', { class: 'tablewrap' }, E('table', {}, E('thead', {}, E('tr', {}, ['Time', 'Level', 'Message'].map(h => E('th', { text: h })))), body)));
  async function load() {
    const r = await MB.api('/api/log?level=' + level.value + '&q=' + encodeURIComponent(text.value));
    body.replaceChildren(...r.lines.reverse().map(l => E('tr', { class: 'lvl-' + l.level },
      E('td', { class: 'num', text: l.time.replace('T', ' ') }), E('td', { text: l.level }), E('td', { text: l.text }))));
  }
  level.addEventListener('change', load);
  text.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(load, 300); });
  await load();
  setInterval(() => { if (!document.hidden) load().catch(() => {}); }, 3000);
});
