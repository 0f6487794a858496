// The JSON API from the browser: every call carries the signed-in key
// (kept in sessionStorage only) and every error becomes an APIError with
// the API's own code and message.

const KEY = 'herald.key';

export class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const session = {
  key: () => sessionStorage.getItem(KEY),
  set: (k) => sessionStorage.setItem(KEY, k),
  clear: () => sessionStorage.removeItem(KEY),
};

let onUnauthorized = () => {};
export function whenUnauthorized(fn) { onUnauthorized = fn; }

function headers(extra, key) {
  const h = { Accept: 'application/json', ...extra };
  const k = key ?? session.key();
  if (k) h.Authorization = 'Bearer ' + k;
  return h;
}

async function send(method, path, body, opts) {
  const init = { method, headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }, opts.key), cache: 'no-store', signal: opts.signal };
  if (body !== undefined) init.body = JSON.stringify(body);
  try {
    return await fetch(path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new APIError(0, 'network', 'Herald did not answer: ' + e.message);
  }
}

async function failure(res) {
  const text = await res.text();
  let code = 'http_' + res.status, message = text.trim() || res.statusText;
  try {
    const e = JSON.parse(text).error;
    if (e) { code = e.code; message = e.message; }
  } catch { /* not JSON: keep the text */ }
  return new APIError(res.status, code, message);
}

// call sends one request and returns the decoded answer (null for 204).
export async function call(method, path, body, opts = {}) {
  const res = await send(method, path, body, opts);
  if (!res.ok) {
    const err = await failure(res);
    if (res.status === 401 && !opts.key) onUnauthorized(err);
    throw err;
  }
  if (res.status === 204) return null;
  return res.json();
}

export const get = (path, opts) => call('GET', path, undefined, opts);
export const post = (path, body, opts) => call('POST', path, body, opts);

export const q = (params) => {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    for (const x of [].concat(v)) u.append(k, x);
  }
  const s = u.toString();
  return s ? '?' + s : '';
};

export const enc = encodeURIComponent;
export const storePath = (s) => '/v1/stores/' + enc(s);
export const subPath = (s, id) => storePath(s) + '/subscriptions' + (id ? '/' + enc(id) : '');

// stream reads a text/event-stream (fetch, since EventSource cannot send
// the key) and calls onEvent(id, type, data) per message. It reconnects
// with Last-Event-ID until signal aborts; onState tells 'live', or the
// error it is retrying after.
export async function stream(path, { signal, lastEventId, onEvent, onState }) {
  let last = lastEventId;
  while (!signal.aborted) {
    try {
      const extra = { Accept: 'text/event-stream' };
      if (last) extra['Last-Event-ID'] = String(last);
      const res = await fetch(path, { headers: headers(extra), cache: 'no-store', signal });
      if (!res.ok) {
        const err = await failure(res);
        if (res.status === 401) { onUnauthorized(err); return; }
        if (res.status < 500 && res.status !== 429) { onState(err); return; }
        throw err;
      }
      onState('live');
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const msg = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let id = '', type = 'message', data = '';
          for (const line of msg.split('\n')) {
            if (line.startsWith(':')) continue;
            const c = line.indexOf(':');
            const f = c < 0 ? line : line.slice(0, c);
            const v = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
            if (f === 'id') id = v; else if (f === 'event') type = v; else if (f === 'data') data += (data ? '\n' : '') + v;
          }
          if (!data) continue;
          if (id) last = id;
          onEvent(id, type, JSON.parse(data));
        }
      }
      throw new APIError(0, 'network', 'the stream ended');
    } catch (e) {
      if (signal.aborted) return;
      onState(e);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}
