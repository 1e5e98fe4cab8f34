// The integrity log on the page: where an event is in its workspace's
// signed log ("In checkpoint #N, signed <time>"), its proof to download,
// and the verifiable NDJSON export of the filtered view. A downloaded
// proof is a one-leaf range export with its signed manifest, the same file
// `verify offline -export FILE` checks for any export.

import { APIError } from './api.js';
import { formatLocal, formatUTC, h } from './format.js';

const VERIFY_HINT = 'Check it offline with the public keys of /v1/log/keys: verify offline -export ';

function note(text, cls = 'muted') {
  return h('p', { class: cls, text });
}

// checkpointOf returns the latest signed checkpoint and the event's
// inclusion proof in it. A 404 of either (no checkpoint yet, or no leaf
// yet) and the proof's 409 (sealed after that checkpoint) mean the event
// is not in a signed checkpoint yet: null.
async function checkpointOf(client, base, id) {
  try {
    const cp = await client.json(`${base}/log/checkpoint`);
    const proof = await client.json(`${base}/audit-events/${encodeURIComponent(id)}/proof?size=${cp.size}`);
    return { cp, proof };
  } catch (err) {
    if (err instanceof APIError && (err.status === 404 || err.status === 409)) return null;
    throw err;
  }
}

// loadProof fills el with where the event id is in the log of the
// workspace at base. isCurrent says whether the panel still shows that
// event when the answers come; download(path, doneText) saves a file.
export async function loadProof(el, { client, base, id, isCurrent, download, onAuthError }) {
  el.replaceChildren(note('Checking the integrity log…'));
  let found;
  try {
    found = await checkpointOf(client, base, id);
  } catch (err) {
    if (onAuthError(err) || !isCurrent()) return;
    el.replaceChildren(note(`Could not check the integrity log: ${err.message}`, 'error-text'));
    return;
  }
  if (!isCurrent()) return;
  if (!found) {
    el.replaceChildren(note('Not in a signed checkpoint yet: events are sealed into their workspace’s log shortly after they arrive (within the checkpoint interval, a minute by default).'));
    return;
  }
  const { cp, proof } = found;
  const status = h('p', { class: 'muted small', role: 'status' });
  const button = h('button', {
    type: 'button', class: 'btn btn-small', id: 'download-proof',
    onclick: async () => {
      button.disabled = true;
      status.textContent = '';
      try {
        const name = await download(`${base}/audit-events.ndjson?from_index=${proof.leaf_index}&to_index=${proof.leaf_index + 1}&checkpoint=${cp.size}`);
        status.textContent = `Downloaded ${name}. ${VERIFY_HINT}${name}`;
      } catch (err) {
        if (onAuthError(err)) return;
        status.textContent = `Could not download the proof: ${err.message}`;
      } finally {
        button.disabled = false;
      }
    },
    text: 'Download proof',
  });
  el.replaceChildren(
    h('p', { class: 'checkpoint-line', id: 'checkpoint-line' },
      h('strong', { text: `In checkpoint #${cp.size}` }), `, signed ${formatLocal(cp.signed_at)}`,
      h('span', { class: 'muted small block', text: formatUTC(cp.signed_at) })),
    note(`Leaf ${proof.leaf_index} of the workspace’s log of ${cp.size} events, signed with the key ${cp.key_name}. The proof is a file with the event, its leaf and a signed manifest.`, 'muted small'),
    h('div', { class: 'detail-actions' }, button),
    status,
  );
}

// exportProven downloads the filtered view as NDJSON with its signed
// manifest and returns the text to show.
export async function exportProven(download, path) {
  const name = await download(path);
  return `Downloaded ${name}. It ends with a signed manifest. ${VERIFY_HINT}${name}`;
}
