'use strict';
/* AT console: the remote commands of the AT topics, with their permissions. */
const E = MB.el;

MB.start(async () => {
  const root = MB.$('#page');
  const input = E('input', { id: 'cmd', placeholder: 'AT+CGSN', autocapitalize: 'characters', autocomplete: 'off' });
  const log = E('div', { id: 'console-out' });
  const form = E('form', {}, E('div', { class: 'field' }, E('label', { for: 'cmd', text: 'Command' }), input),
    E('div', { class: 'actions' }, E('button', { type: 'submit', id: 'send' }, 'Send')));
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    const cmd = input.value;
    if (!cmd) return;
    const r = await MB.api('/api/at', { method: 'POST', body: MB.form([['command', cmd]]) });
    log.prepend(E('div', { class: 'exchange' }, E('div', { class: 'muted', text: '> ' + cmd }),
      E('pre', { class: 'reply', text: r.reply || r.error || '' })));
    if (r.restarting) { log.prepend(E('div', { class: 'msg info', text: 'The gateway restarts.' })); }
    input.select();
  });
  root.replaceChildren(E('section', { class: 'card' }, E('p', { class: 'muted', text: 'Commands run as if they came on an AT topic, with the same permissions (remote.* in the file). Try AT+CGSN, AT+MBSTATUS, AT^MTXTUNNEL=GETPARAM,mqtt.qos.' }), form), log);
  input.focus();
});
