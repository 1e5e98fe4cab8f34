// The read API as the page uses it: every request carries the owner's
// bearer token; failures become APIError with the status and the API's
// error envelope {"error": {"code", "message", "field"}}.

export class APIError extends Error {
  constructor(status, body, fallback) {
    const e = (body && body.error) || {};
    super(e.message || fallback || `The server answered HTTP ${status}.`);
    this.name = 'APIError';
    this.status = status;
    this.code = e.code || '';
    this.field = e.field || '';
  }
}

async function errorOf(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  return new APIError(resp.status, body);
}

function networkError(err) {
  if (err && err.name === 'AbortError') return err;
  return new APIError(0, null, 'Cannot reach the server. Check your connection and try again.');
}

export class Client {
  constructor(token) {
    this.token = token;
  }

  // fetch sends one request and returns the Response when it is 2xx.
  async fetch(path, { method = 'GET', body, signal } = {}) {
    const headers = { Authorization: `Bearer ${this.token}`, Accept: 'application/json, text/csv' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let resp;
    try {
      resp = await fetch(path, {
        method,
        headers,
        signal,
        cache: 'no-store',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw networkError(err);
    }
    if (!resp.ok) throw await errorOf(resp);
    return resp;
  }

  async json(path, opts) {
    const resp = await this.fetch(path, opts);
    if (resp.status === 204) return null;
    const text = await resp.text();
    return text ? JSON.parse(text) : null;
  }
}

// publicJSON reads an endpoint that needs no token.
export async function publicJSON(path) {
  let resp;
  try {
    resp = await fetch(path, { headers: { Accept: 'application/json' }, cache: 'no-store' });
  } catch (err) {
    throw networkError(err);
  }
  if (!resp.ok) throw await errorOf(resp);
  return resp.json();
}
