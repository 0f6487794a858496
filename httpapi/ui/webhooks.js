// Webhooks of a store: health at a glance, one webhook's settings and
// actions (test, pause/enable, rotate, replay, delete), and the form that
// adds or edits one.
import { get, post, call, subPath, storePath, q } from './api.js';
import { h, replace, table, id, relTime, age, empty, errorBox, badge, confirm, modal, field, copyButton, headersView, bodyView } from './ui.js';

export function statusBadge(s) {
  if (s.status === 'disabled') return badge('disabled', 'disabled: ' + (s.disabled_reason || 'by Herald'));
  if (s.status === 'paused') return badge('paused');
  if (s.breaker_open) return badge('probing', 'breaker open, probing');
  return badge('active');
}

function lag(s) {
  const hl = s.health;
  if (!hl) return '';
  if (!hl.lag_events && !hl.retry_pending) return h('span', { class: 'muted' }, 'up to date');
  return [hl.lag_events ? `${hl.lag_events.toLocaleString()} events` : null,
    hl.oldest_pending_at ? ` · oldest ${age(hl.oldest_pending_at)}` : null,
    hl.retry_pending ? h('div', { class: 'muted' }, `${hl.retry_pending} retrying`) : null];
}

function lastAttempt(s) {
  const a = s.health?.last_attempt;
  if (!a) return h('span', { class: 'muted' }, 'none yet');
  return [badge(a.status), a.response_status ? ' HTTP ' + a.response_status : '', ' ', relTime(a.at)];
}

// attemptView shows one attempt as request and response side by side.
export function attemptView(a, sub, event) {
  const req = h('section', { class: 'half', 'aria-label': 'Request' }, h('h3', {}, 'Request'),
    h('p', {}, h('code', {}, 'POST ' + (sub?.url || ''))),
    headersView(a.request_headers),
    event ? [h('h4', {}, 'Body'), bodyView(JSON.stringify(envelope(event)))] : null);
  const res = h('section', { class: 'half', 'aria-label': 'Response' }, h('h3', {}, 'Response'),
    h('p', {}, a.response_status ? h('strong', {}, 'HTTP ' + a.response_status) : h('span', { class: 'muted' }, 'no response'),
      a.duration_ms !== undefined ? ` in ${a.duration_ms.toFixed(1)} ms` : ''),
    a.error ? h('div', { class: 'error' }, a.error) : null,
    headersView(a.response_headers),
    h('h4', {}, 'Body'), bodyView(a.response_body));
  return h('article', { class: 'attempt' },
    h('header', {}, badge(a.status), a.attempt ? ` attempt ${a.attempt}` : '', a.manual ? ' (manual)' : '', ' · ', relTime(a.at)),
    h('div', { class: 'pair' }, req, res));
}

// envelope is the body Herald sends: the stored event without its hash.
function envelope(e) {
  const { hash, ...rest } = e; // eslint-disable-line no-unused-vars
  return rest;
}

export function secretPanel(secret) {
  const snippets = {
    Go: `wh, _ := standardwebhooks.NewWebhook(os.Getenv("HERALD_SECRET"))\nif err := wh.Verify(body, r.Header); err != nil { http.Error(w, "bad signature", 401); return }`,
    Node: `import { Webhook } from "standardwebhooks";\nnew Webhook(process.env.HERALD_SECRET).verify(rawBody, req.headers); // throws when invalid`,
    Python: `from standardwebhooks.webhooks import Webhook\nWebhook(os.environ["HERALD_SECRET"]).verify(raw_body, headers)  # raises when invalid`,
  };
  return h('section', { class: 'secret card', 'aria-label': 'Signing secret' },
    h('h2', {}, 'Signing secret'),
    h('p', {}, 'Shown once. Store it in your receiver now: Herald keeps it sealed and will not show it again.'),
    h('div', { class: 'secret-value' }, h('code', { 'data-secret': '' }, secret), copyButton(secret, 'Copy secret')),
    h('details', {}, h('summary', {}, 'Verify it in your receiver'),
      Object.entries(snippets).map(([lang, code]) => [h('h4', {}, lang), h('pre', {}, code)]),
      h('p', { class: 'muted' }, 'Verify the raw body before parsing it; see docs/receivers.md.')));
}

function settings(s) {
  const hdrs = {};
  for (const [k, v] of Object.entries(s.headers || {})) hdrs[k] = (s.sensitive_headers || []).some((n) => n.toLowerCase() === k.toLowerCase()) ? '•••• (sensitive)' : v;
  return h('dl', { class: 'facts' },
    h('dt', {}, 'Id'), h('dd', {}, id(s.id)),
    h('dt', {}, 'URL'), h('dd', {}, h('code', {}, s.url)),
    h('dt', {}, 'Event types'), h('dd', {}, s.types.length ? s.types.join(', ') : 'every event'),
    h('dt', {}, 'Status'), h('dd', {}, statusBadge(s)),
    h('dt', {}, 'Lag'), h('dd', {}, lag(s) || '—'),
    h('dt', {}, 'Last attempt'), h('dd', {}, lastAttempt(s)),
    h('dt', {}, 'Failing since'), h('dd', {}, relTime(s.failing_since)),
    h('dt', {}, 'Cursor'), h('dd', {}, s.cursor),
    h('dt', {}, 'Ordered'), h('dd', {}, s.ordered ? 'yes' : 'no'),
    h('dt', {}, 'Retry schedule'), h('dd', {}, s.retry_schedule.join(', ') || 'no retries'),
    h('dt', {}, 'Timeout'), h('dd', {}, s.timeout),
    h('dt', {}, 'Rate limit'), h('dd', {}, s.rate_limit ? s.rate_limit + '/s' : 'none'),
    h('dt', {}, 'Max in flight'), h('dd', {}, s.max_in_flight),
    h('dt', {}, 'Disable after'), h('dd', {}, s.disable_after),
    h('dt', {}, 'Headers'), h('dd', {}, headersView(hdrs)),
    h('dt', {}, 'Description'), h('dd', {}, s.description || '—'),
    h('dt', {}, 'Created'), h('dd', {}, relTime(s.created_at)));
}

async function sendTest(ctx, s) {
  const out = h('div', {}, h('p', { class: 'muted' }, 'Sending…'));
  modal('Test event', out);
  try {
    const a = await post(subPath(ctx.store, s.id) + '/test');
    replace(out, h('p', {}, 'Herald sent a herald.test event to the endpoint, signed like every delivery.'), attemptView(a, s));
  } catch (err) { replace(out, errorBox(err)); }
}

async function rotate(ctx, s, after) {
  const grace = h('select', {}, h('option', { value: '24h' }, '24 hours (default)'), h('option', { value: '1h' }, '1 hour'), h('option', { value: '0s' }, 'none: the old secret stops now'));
  const out = h('div');
  const dlg = modal('Rotate secret', h('form', { onsubmit: async (e) => {
    e.preventDefault();
    if (grace.value === '0s' && !(await confirm('Rotate without grace?', `Deliveries to ${s.url} signed with the old secret stop verifying at once.`, 'Rotate now'))) return;
    try {
      const r = await post(subPath(ctx.store, s.id) + '/secret/rotate', { grace: grace.value });
      replace(out, secretPanel(r.secret));
      after();
    } catch (err) { replace(out, errorBox(err)); }
  } }, field('Old secret keeps signing for', grace), h('button', { type: 'submit', class: 'primary' }, 'Rotate')), out);
  return dlg;
}

async function replayDialog(ctx, s) {
  const st = await get(storePath(ctx.store));
  const mode = h('select', {}, h('option', { value: 'seq' }, 'from a seq'), h('option', { value: 'since' }, 'since a time'), h('option', { value: 'dead' }, 'only dead deliveries'));
  const seq = h('input', { type: 'number', min: 1, value: Math.max(1, st.first_seq || 1) });
  const since = h('input', { type: 'datetime-local' });
  const preview = h('p', { 'aria-live': 'polite' });
  const out = h('div');
  const update = async () => {
    seq.parentElement.hidden = mode.value !== 'seq';
    since.parentElement.hidden = mode.value !== 'since';
    if (mode.value === 'seq') replace(preview, `Up to ${Math.max(0, st.last_seq - Number(seq.value) + 1).toLocaleString()} events of ${ctx.store} (seq ${seq.value}–${st.last_seq}), those matching the webhook's types.`);
    if (mode.value === 'since') replace(preview, since.value ? `Every event of ${ctx.store} since ${new Date(since.value).toISOString()} that matches the webhook's types.` : 'Pick a time.');
    if (mode.value === 'dead') {
      try {
        const d = await get(subPath(ctx.store, s.id) + '/deliveries' + q({ status: 'dead', limit: 1000 }));
        replace(preview, `${d.deliveries.length}${d.next ? '+' : ''} dead deliveries will be queued again.`);
      } catch (err) { replace(preview, errorBox(err)); }
    }
  };
  const form = h('form', { onsubmit: async (e) => {
    e.preventDefault();
    const body = mode.value === 'seq' ? { from_seq: Number(seq.value) } : mode.value === 'since' ? { since: new Date(since.value).toISOString() } : { from_seq: 1, only: 'dead' };
    try {
      const r = await post(subPath(ctx.store, s.id) + '/replay', body);
      replace(out, h('p', { class: 'ok', role: 'status' }, `Queued ${r.queued.toLocaleString()} from seq ${r.from_seq}.`));
    } catch (err) { replace(out, errorBox(err)); }
  } }, field('Replay', mode), field('From seq', seq), field('Since', since), preview, h('button', { type: 'submit', class: 'primary' }, 'Replay'));
  for (const el of [mode, seq, since]) el.addEventListener('change', update);
  modal('Replay to ' + s.url, form, out);
  update();
}

function detailView(ctx, s, reload) {
  const msg = h('div');
  const act = (label, fn, cls) => h('button', { type: 'button', class: cls, onclick: async () => {
    replace(msg);
    try { await fn(); } catch (err) { replace(msg, errorBox(err)); }
  } }, label);
  const base = `#/stores/${encodeURIComponent(ctx.store)}`;
  return h('div', {},
    h('div', { class: 'detail-head' }, h('h2', {}, 'Webhook'), h('a', { href: base + '/webhooks', class: 'button' }, 'Close')),
    h('div', { class: 'actions wrap' },
      act('Send test event', () => sendTest(ctx, s), 'primary'),
      s.status === 'active' ? act('Pause', async () => {
        if (!(await confirm('Pause webhook?', `Stop delivering to ${s.url}? Events wait (and count as lag) until it is enabled again.`, 'Pause', false))) return;
        await post(subPath(ctx.store, s.id) + '/pause'); reload();
      }) : act('Enable', async () => {
        if (!(await confirm('Enable webhook?', `Deliver to ${s.url} again, starting with the events that waited.`, 'Enable', false))) return;
        await post(subPath(ctx.store, s.id) + '/enable'); reload();
      }),
      h('a', { class: 'button', href: `${base}/webhooks/${encodeURIComponent(s.id)}/edit` }, 'Edit'),
      act('Rotate secret', () => rotate(ctx, s, reload)),
      act('Replay', () => replayDialog(ctx, s)),
      h('a', { class: 'button', href: `${base}/deliveries?sub=${encodeURIComponent(s.id)}` }, 'Delivery log'),
      act('Delete', async () => {
        if (!(await confirm('Delete webhook?', `Delete ${s.url} (${s.id})? Delivery stops and its delivery log is removed.`, 'Delete'))) return;
        await call('DELETE', subPath(ctx.store, s.id));
        ctx.go(base + '/webhooks');
      }, 'danger')),
    msg, settings(s));
}

export async function webhooksView(ctx) {
  const store = ctx.store;
  const selId = ctx.parts[0];
  const list = h('div');
  const detail = h('aside', { class: 'detail', 'aria-label': 'Webhook' });
  const base = `#/stores/${encodeURIComponent(store || '')}`;
  const load = async () => {
    let subs;
    try { subs = (await get(subPath(store))).subscriptions; } catch (err) { replace(list, errorBox(err)); return; }
    replace(list, subs.length === 0
      ? empty(h('p', {}, 'No webhooks yet — ', h('a', { href: base + '/webhooks/new' }, 'Add webhook'), '.'))
      : table([
        ['Status', statusBadge],
        ['URL', (s) => h('span', { class: 'url', title: s.url }, s.url)],
        ['Types', (s) => s.types.length ? s.types.join(', ') : 'every event', { hide: true }],
        ['Lag', lag],
        ['Last attempt', lastAttempt],
        ['Failing since', (s) => relTime(s.failing_since), { hide: true }],
      ], subs, { label: 'Webhooks', onRow: (s) => ctx.go(`${base}/webhooks/${encodeURIComponent(s.id)}`), selected: (s) => s.id === selId }));
    const sel = subs.find((s) => s.id === selId);
    if (selId && !sel) replace(detail, errorBox(new Error('No webhook ' + selId + ' in ' + store)));
    else if (sel && !detail.contains(document.activeElement)) replace(detail, detailView(ctx, sel, load));
  };
  if (!store) {
    replace(ctx.main, h('h1', {}, 'Webhooks'), empty(h('p', {}, 'No store yet: publish an event first.')));
    return {};
  }
  replace(ctx.main,
    h('header', { class: 'page-head' }, h('h1', {}, 'Webhooks of ', store), h('a', { href: base + '/webhooks/new', class: 'button primary' }, 'Add webhook')),
    h('div', { class: selId ? 'split open' : 'split' }, list, detail));
  await load();
  return { refresh: load };
}

// webhookForm adds (parts ['new']) or edits (parts [id, 'edit']) a webhook.
export async function webhookForm(ctx) {
  const store = ctx.store;
  const editing = ctx.parts[1] === 'edit' ? await get(subPath(store, ctx.parts[0])) : null;
  const s = editing || { types: [], headers: {}, sensitive_headers: [], retry_schedule: [] };
  const base = `#/stores/${encodeURIComponent(store)}`;

  const url = h('input', { type: 'url', required: true, value: s.url || '', placeholder: 'https://example.com/webhooks/herald', autocomplete: 'off' });
  const urlMsg = h('div', { class: 'inline-error', 'aria-live': 'polite' });
  url.addEventListener('input', () => {
    let m = '';
    try {
      const u = new URL(url.value);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') m = 'Use http:// or https://.';
      else if (!u.hostname) m = 'Give a host.';
    } catch { m = url.value ? 'Not a URL yet: https://host/path' : ''; }
    url.setCustomValidity(m);
    replace(urlMsg, m);
  });
  const desc = h('input', { type: 'text', value: s.description || '' });

  // Event types: those seen in the store, and free patterns.
  const chosen = new Set(s.types);
  const typeSearch = h('input', { type: 'search', placeholder: 'Filter types' });
  const typeList = h('div', { class: 'type-list', role: 'group', 'aria-label': 'Event types seen in ' + store });
  let seen = [], typesErr = null, truncated = false;
  try {
    const r = await get(storePath(store) + '/types');
    seen = r.types;
    truncated = r.truncated;
  } catch (err) { typesErr = err; }
  const seenNames = new Set(seen.map((t) => t.type));
  const patterns = h('input', { type: 'text', value: s.types.filter((t) => !seenNames.has(t)).join(', '), placeholder: 'order.* , store/order/*' });
  const drawTypes = () => {
    if (typesErr) { replace(typeList, errorBox(typesErr), h('p', { class: 'muted' }, 'Type patterns below instead.')); return; }
    if (truncated) typeList.after(h('p', { class: 'muted' }, 'The store has more types than Herald lists; type the others as patterns.'));
    truncated = false;
    if (!seen.length) { replace(typeList, h('p', { class: 'muted' }, 'No event types seen in this store yet: type patterns below.')); return; }
    const f = typeSearch.value.toLowerCase();
    replace(typeList, seen.filter((t) => t.type.toLowerCase().includes(f)).map((t) => {
      const cb = h('input', { type: 'checkbox', checked: chosen.has(t.type), onchange: () => { if (cb.checked) chosen.add(t.type); else chosen.delete(t.type); } });
      return h('label', { class: 'check' }, cb, ' ', t.type, ' ', h('span', { class: 'muted' }, `(${t.count.toLocaleString()}, last ${age(t.last_seen_at)} ago)`));
    }));
  };
  typeSearch.addEventListener('input', drawTypes);
  drawTypes();

  // Advanced.
  const ordered = h('input', { type: 'checkbox', checked: s.ordered });
  const retry = h('input', { type: 'text', value: s.retry_schedule.join(', '), placeholder: 'server default, e.g. 5s, 1m, 10m, 1h' });
  const chips = h('div', { class: 'chips', 'aria-hidden': 'true' });
  const drawChips = () => replace(chips, retry.value.split(/[\s,]+/).filter(Boolean).map((d) => h('span', { class: 'chip' }, d)));
  retry.addEventListener('input', drawChips);
  drawChips();
  const timeout = h('input', { type: 'text', value: s.timeout || '', placeholder: 'server default, e.g. 15s' });
  const rate = h('input', { type: 'number', min: 0, step: 'any', value: editing ? s.rate_limit : '', placeholder: 'none' });
  const inflight = h('input', { type: 'number', min: 1, value: editing ? s.max_in_flight : '', placeholder: 'server default' });
  const disableAfter = h('input', { type: 'text', value: s.disable_after || '', placeholder: 'server default, e.g. 120h' });
  const headerRows = h('div', { class: 'header-rows' });
  const addHeader = (name = '', value = '', sensitive = false) => {
    const row = h('div', { class: 'header-row' },
      h('input', { type: 'text', value: name, 'aria-label': 'Header name', placeholder: 'Authorization' }),
      h('input', { type: sensitive ? 'password' : 'text', value, 'aria-label': 'Header value', placeholder: sensitive && editing ? '(unchanged)' : 'value' }),
      h('label', { class: 'check' }, h('input', { type: 'checkbox', checked: sensitive, 'aria-label': 'Sensitive', onchange: (e) => { row.children[1].type = e.target.checked ? 'password' : 'text'; } }), ' sensitive'),
      h('button', { type: 'button', class: 'small', onclick: () => row.remove() }, 'Remove'));
    headerRows.append(row);
  };
  const sens = (k) => (s.sensitive_headers || []).some((n) => n.toLowerCase() === k.toLowerCase());
  for (const [k, v] of Object.entries(s.headers || {})) addHeader(k, sens(k) ? '' : v, sens(k));
  const fromSeq = h('input', { type: 'number', min: 1, placeholder: "the store's end" });

  const out = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'primary' }, editing ? 'Save' : 'Add webhook');
  const form = h('form', { class: 'card form', 'aria-label': editing ? 'Edit webhook' : 'Add webhook' },
    field('Endpoint URL', url), urlMsg,
    field('Description', desc),
    h('fieldset', {}, h('legend', {}, 'Event types'),
      h('p', { class: 'hint' }, 'Pick the types seen in ' + store + ', add patterns, or leave both empty for every event.'),
      field('Search types', typeSearch), typeList, field('Other patterns', patterns, 'Comma-separated; * is one segment, ** the rest.')),
    h('details', {}, h('summary', {}, 'Advanced'),
      h('label', { class: 'check' }, ordered, ' Ordered (one event at a time, in seq order)'),
      field('Retry schedule', retry, 'Delays between attempts, comma-separated.'), chips,
      field('Timeout', timeout), field('Rate limit (per second)', rate), field('Max in flight', inflight),
      field('Disable after failing for', disableAfter),
      editing ? null : field('Start from seq', fromSeq, 'Empty: new events only. A seq replays the log from there.'),
      h('fieldset', {}, h('legend', {}, 'Headers'), headerRows, h('button', { type: 'button', class: 'small', onclick: () => addHeader() }, 'Add header'))),
    h('div', { class: 'actions' }, h('a', { class: 'button', href: editing ? `${base}/webhooks/${encodeURIComponent(s.id)}` : base + '/webhooks' }, 'Cancel'), submit));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    replace(out); replace(urlMsg);
    // Checked types, then the typed patterns (which hold the rest).
    const types = [...new Set([...[...chosen].filter((t) => seenNames.has(t)), ...patterns.value.split(/[\s,]+/).filter(Boolean)])];
    const body = { url: url.value.trim(), description: desc.value, types, ordered: ordered.checked };
    if (retry.value.trim() || editing) body.retry_schedule = retry.value.split(/[\s,]+/).filter(Boolean);
    if (timeout.value.trim()) body.timeout = timeout.value.trim();
    if (disableAfter.value.trim()) body.disable_after = disableAfter.value.trim();
    if (rate.value !== '') body.rate_limit = Number(rate.value);
    if (inflight.value !== '') body.max_in_flight = Number(inflight.value);
    const headers = {}, sensitive = [];
    for (const row of headerRows.children) {
      const [n, v, c] = row.querySelectorAll('input');
      if (!n.value.trim()) continue;
      headers[n.value.trim()] = v.value;
      if (c.checked) sensitive.push(n.value.trim());
    }
    if (editing || Object.keys(headers).length) { body.headers = headers; body.sensitive_headers = sensitive; }
    if (!editing && fromSeq.value) body.from_seq = Number(fromSeq.value);
    submit.disabled = true;
    try {
      if (editing) {
        await call('PATCH', subPath(store, s.id), body);
        ctx.go(`${base}/webhooks/${encodeURIComponent(s.id)}`);
        return;
      }
      const created = await post(subPath(store), body);
      replace(ctx.main, h('header', { class: 'page-head' }, h('h1', {}, 'Webhook added')),
        h('p', {}, h('code', {}, created.url), ' receives events of ', store, '.'),
        secretPanel(created.secret),
        h('p', {}, h('a', { class: 'button primary', href: `${base}/webhooks/${encodeURIComponent(created.id)}` }, 'Go to the webhook')));
    } catch (err) {
      if (err.code === 'blocked_destination' || err.code === 'invalid_subscription') replace(urlMsg, errorBox(err));
      else replace(out, errorBox(err));
    } finally { submit.disabled = false; }
  });

  replace(ctx.main, h('header', { class: 'page-head' }, h('h1', {}, editing ? 'Edit webhook' : 'Add webhook to ' + store)), form, out);
  url.focus();
  return {};
}
