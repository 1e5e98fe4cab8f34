// The forwarding drawer's target picker: the saved target as a card (name,
// URL, whether a write key is set) and the outcome of "Send a test event" in
// words.

import { h } from './format.js';

const STATUS_TEXT = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  408: 'Request Timeout', 413: 'Payload Too Large', 429: 'Too Many Requests', 500: 'Internal Server Error',
  502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};

const ADVICE = {
  401: 'check the write key',
  403: 'check the write key and that the source accepts it',
  404: 'check the target URL (events go to {URL}/v1/batch)',
  413: 'the target refuses requests of this size',
  429: 'the target is rate limiting; the forwarder retries such answers',
};

// testOutcome turns the answer of POST .../forwarding/test into
// {ok, text}: delivered, refused by policy, timed out, the target's HTTP
// status, and so on.
export function testOutcome(r) {
  const status = (r && r.status) || 0;
  const named = status ? `HTTP ${status}${STATUS_TEXT[status] ? ` ${STATUS_TEXT[status]}` : ''}` : '';
  if (r && r.ok) return { ok: true, text: `Delivered: the target accepted the test event (${named}).` };
  switch (r && r.message) {
    case 'refused by policy':
      return { ok: false, text: 'Refused by policy: the target’s address is not public and the operator has not allowed it, so nothing was sent.' };
    case 'timeout':
      return { ok: false, text: 'Timed out: the target did not answer within 10 seconds.' };
    case 'unreachable':
      return { ok: false, text: 'Unreachable: the target’s name did not resolve or its connection failed.' };
    case 'TLS error':
      return { ok: false, text: 'TLS error: the target’s certificate could not be verified.' };
    case 'redirect not followed':
      return { ok: false, text: `Not delivered: the target answered with a redirect (${named}), which is not followed; save the final URL instead.` };
    default:
      break;
  }
  if (status) {
    const advice = ADVICE[status] || (status >= 500 ? 'the target failed; the forwarder retries such answers' : '');
    return { ok: false, text: `Not delivered: the target answered ${named}${advice ? `; ${advice}` : ''}.` };
  }
  return { ok: false, text: `Not delivered${r && r.message ? `: ${r.message}` : ''}.` };
}

// renderTarget fills the saved-target card from the forwarding settings
// (GET .../forwarding; the write key comes masked).
export function renderTarget(card, list, f) {
  const t = (f && f.target) || {};
  card.hidden = !t.url;
  if (!t.url) return;
  list.replaceChildren(
    h('dt', { text: 'Name' }), h('dd', { text: t.name || 'No name' }),
    h('dt', { text: 'URL' }), h('dd', {}, h('code', { text: t.url })),
    h('dt', { text: 'Write key' }), h('dd', { text: t.write_key ? `Set (${t.write_key})` : 'Not set: a test event needs one' }),
    h('dt', { text: 'Forwarding' }), h('dd', { text: f.enabled ? 'On' : 'Off' }),
  );
}
