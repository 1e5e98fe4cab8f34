// Checks while the owner types: a debounced call to one of the settings
// API's validate routes, its answer shown in a status line next to the
// field. Only the answer to the latest value is shown.

import { APIError } from './api.js';

const DELAY = 350; // ms after the last keystroke

// liveCheck returns check(value): after a pause in typing, local(value)
// runs first (a message it returns is shown as is and nothing is sent);
// then remote(value) answers {valid, field, message}. status is the line
// that shows the outcome; input gets aria-invalid. onAuth(err) handles an
// authentication failure (true: handled).
export function liveCheck({ input, status, local, remote, onAuth, okText }) {
  let timer = 0;
  let seq = 0;
  const show = (text, kind) => {
    status.textContent = text;
    status.dataset.kind = kind;
    status.hidden = !text;
    if (kind === 'error') input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  };
  const run = async (value, mine) => {
    const msg = local ? local(value) : '';
    if (msg) {
      show(msg, 'error');
      return;
    }
    if (!remote) {
      show('', '');
      return;
    }
    show('Checking…', 'pending');
    try {
      const r = await remote(value);
      if (mine !== seq) return;
      if (r && r.valid) show(okText || 'Looks good.', 'ok');
      else show(describe(r), 'error');
    } catch (err) {
      if (mine !== seq) return;
      if (onAuth && onAuth(err)) return;
      show(err instanceof APIError && err.status === 400 ? err.message : 'Could not check this now; it is checked again when you save.', 'warn');
    }
  };
  return (value) => {
    clearTimeout(timer);
    const mine = ++seq;
    timer = setTimeout(() => run(value, mine), DELAY);
  };
}

function describe(r) {
  const msg = (r && r.message) || 'Not accepted.';
  return r && r.field ? `${r.field}: ${msg}` : msg;
}

// parseJSON reads a JSON text typed by the owner: {value} or {error}.
export function parseJSON(text) {
  if (!text.trim()) return { value: undefined };
  try {
    return { value: JSON.parse(text) };
  } catch (err) {
    return { error: `Not valid JSON: ${String(err.message || err).replace(/^JSON\.parse: /, '')}` };
  }
}
