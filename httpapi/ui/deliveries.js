// The delivery log: a webhook's attempts newest first, filtered by
// status; one event's every attempt, request beside response; Redeliver.
import { get, post, q, subPath, storePath } from './api.js';
import { h, replace, table, id, relTime, empty, errorBox, badge, field } from './ui.js';
import { attemptView, statusBadge } from './webhooks.js';

const PAGE = 50;

// newestAttempts reads up to PAGE attempts with id <= top, newest first.
async function newestAttempts(path, top, status) {
  const out = [];
  const w = status ? 500 : PAGE;
  let hi = top;
  for (let i = 0; i < 10 && hi > 0 && out.length < PAGE; i++) {
    const after = Math.max(0, hi - w);
    const page = await get(path + q({ after, limit: w, status }));
    out.push(...page.deliveries.filter((d) => d.id <= hi).reverse());
    hi = after;
  }
  // more is the top of the next page: below the last one shown, or where
  // the scan stopped; 0 when the log is read to its start.
  const more = out.length >= PAGE ? out[PAGE - 1].id - 1 : hi;
  return { list: out.slice(0, PAGE), more };
}

export async function deliveriesView(ctx) {
  const store = ctx.store;
  if (!store) {
    replace(ctx.main, h('h1', {}, 'Deliveries'), empty(h('p', {}, 'No store yet: publish an event first.')));
    return {};
  }
  const base = `#/stores/${encodeURIComponent(store)}/deliveries`;
  const subs = (await get(subPath(store))).subscriptions;
  if (!subs.length) {
    replace(ctx.main, h('h1', {}, 'Deliveries'), empty(h('p', {}, 'No webhooks yet — ', h('a', { href: `#/stores/${encodeURIComponent(store)}/webhooks/new` }, 'Add webhook'), '.')));
    return {};
  }
  const subId = ctx.query.get('sub') || subs[0].id;
  const status = ctx.query.get('status') || '';
  let eventId = ctx.query.get('event') || '';
  const link = (p) => base + q({ sub: subId, status, event: eventId, ...p });

  const subSel = h('select', {}, subs.map((s) => h('option', { value: s.id, selected: s.id === subId }, s.url + ' (' + s.id.slice(-6) + ')')));
  subSel.addEventListener('change', () => ctx.go(base + q({ sub: subSel.value, status })));
  const statusSel = h('select', {}, ['', 'succeeded', 'failed', 'pending', 'dead'].map((v) => h('option', { value: v, selected: v === status }, v || 'all attempts')));
  statusSel.addEventListener('change', () => ctx.go(base + q({ sub: subId, status: statusSel.value })));
  const head = h('div');
  const list = h('div');
  const detail = h('aside', { class: 'detail', 'aria-label': 'Event deliveries' });
  const path = subPath(store, subId) + '/deliveries';
  let rows = [], more = 0, sub = null;

  const drawList = (err) => {
    replace(list, errorBox(err), rows.length === 0 && !err
      ? empty(h('p', {}, status ? `No ${status} deliveries.` : 'No attempts yet: publish an event or send a test event from the webhook.'))
      : [table([
        ['Status', (d) => badge(d.status)],
        ['Seq', (d) => d.seq, { num: true }],
        ['Event', (d) => id(d.event_id, { copyable: false }), { hide: true }],
        ['Attempt', (d) => d.attempt || d.attempts || '', { num: true, hide: true }],
        ['HTTP', (d) => d.response_status || '', { num: true }],
        ['Duration', (d) => d.duration_ms !== undefined ? d.duration_ms.toFixed(0) + ' ms' : '', { num: true, hide: true }],
        ['When', (d) => relTime(d.at || d.next_attempt_at)],
        ['Error', (d) => h('span', { class: 'clip', title: d.error || d.last_error || '' }, d.error || d.last_error || ''), { hide: true }],
      ], rows, { label: 'Deliveries', onRow: (d) => ctx.go(link({ event: d.event_id })), selected: (d) => d.event_id === eventId }),
      more ? h('button', { type: 'button', onclick: older }, status === 'dead' || status === 'pending' ? 'Next' : 'Older') : null]);
  };
  const loadList = async (from) => {
    sub = await get(subPath(store, subId));
    replace(head, h('p', {}, statusBadge(sub), ' ', h('code', {}, sub.url), ' ',
      h('a', { href: `#/stores/${encodeURIComponent(store)}/webhooks/${encodeURIComponent(sub.id)}` }, 'Webhook settings')));
    if (status === 'dead' || status === 'pending') {
      const page = await get(path + q({ status, after: from || 0, limit: PAGE }));
      return { list: page.deliveries, more: page.next };
    }
    const top = from ?? sub.health?.last_attempt?.id ?? 0;
    return newestAttempts(path, top, status);
  };
  const load = async () => {
    try { ({ list: rows, more } = await loadList()); drawList(); } catch (err) { drawList(err); }
  };
  const older = async () => {
    try { const r = await loadList(more); rows = status === 'dead' || status === 'pending' ? r.list : rows.concat(r.list); more = r.more; drawList(); } catch (err) { drawList(err); }
  };

  const msg = h('div', { 'aria-live': 'polite' }); // outlives the reloads of the pane
  const loadDetail = async () => {
    if (!eventId) { replace(detail); return; }
    try {
      const [d, ev] = await Promise.all([
        get(path + '/' + encodeURIComponent(eventId)),
        get(storePath(store) + '/events/' + encodeURIComponent(eventId)).catch(() => null),
      ]);
      const redeliver = h('button', { type: 'button', class: 'primary', onclick: async () => {
        try {
          const r = await post(path + '/' + encodeURIComponent(eventId) + '/redeliver');
          replace(msg, h('p', { class: 'ok', role: 'status' }, 'Queued for redelivery, due ', relTime(r.next_attempt_at), '.'));
          setTimeout(refresh, 1000);
        } catch (err) { replace(msg, errorBox(err)); }
      } }, 'Redeliver');
      replace(detail,
        h('div', { class: 'detail-head' }, h('h2', {}, ev ? ev.type : 'Event'), h('a', { class: 'button', href: link({ event: '' }) }, 'Close')),
        h('p', {}, 'Event ', id(eventId), ev ? [' · seq ', ev.seq] : ' (no longer in the log)'),
        h('div', { class: 'actions' }, redeliver), msg,
        d.attempts.length ? d.attempts.slice().reverse().map((a) => attemptView(a, sub, ev)) : empty('No attempts kept for this event.'));
    } catch (err) { replace(detail, errorBox(err)); }
  };
  const refresh = async () => { await load(); await loadDetail(); };

  replace(ctx.main,
    h('header', { class: 'page-head' }, h('h1', {}, 'Delivery log')),
    h('div', { class: 'toolbar' }, field('Webhook', subSel), field('Status', statusSel)),
    head,
    h('div', { class: eventId ? 'split open' : 'split' }, list, detail));
  await load();
  await loadDetail();
  return { refresh };
}
