// The workspace's retention as the page shows it: how long its events are
// kept (under the title) and, while the operator holds the workspace, a
// notice that nothing in it expires. Read once per workspace and page load
// from GET /v1/workspaces/{ws}/retention; when that fails (a server
// without it, a network error) both are left out and the next view asks
// again.

const known = new Map(); // workspace -> Promise of the answer, or null

function retentionOf(client, ws) {
  if (!known.has(ws)) {
    const p = client.json(`/v1/workspaces/${encodeURIComponent(ws)}/retention`).catch(() => {
      known.delete(ws);
      return null;
    });
    known.set(ws, p);
  }
  return known.get(ws);
}

function daysText(n) {
  if (n % 365 === 0) return n === 365 ? '1 year' : `${n / 365} years`;
  return n === 1 ? '1 day' : `${n} days`;
}

// showRetention fills sub (the line under the title) and notice (the legal
// hold banner) for ws; current() names the workspace shown by the time
// the answer arrives, so a late answer for another one changes nothing.
// The text and notice stay while the same workspace is shown again (a
// filter change), so they do not flicker.
let shown = '';

export async function showRetention(client, ws, { sub, notice, current }) {
  if (shown !== ws) {
    shown = ws;
    sub.textContent = `Changes made in ${ws}.`;
    notice.hidden = true;
  }
  const r = await retentionOf(client, ws);
  if (!r || current() !== ws || typeof r.days !== 'number') return;
  sub.textContent = r.legal_hold
    ? `Changes made in ${ws}. Kept for ${daysText(r.days)}, and longer while the legal hold is on.`
    : `Changes made in ${ws}, kept for ${daysText(r.days)}.`;
  notice.hidden = !r.legal_hold;
}
