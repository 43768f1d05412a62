'use strict';
/* The login form posts by itself; this only says why we are back here. */
const failed = new URLSearchParams(location.search).get('failed');
if (failed) {
  const m = document.getElementById('msg');
  const d = document.createElement('div');
  d.className = 'msg bad';
  d.textContent = failed === 'locked' ? 'Too many failed logins: locked for a few minutes.' : 'Wrong user or password.';
  m.appendChild(d);
}
