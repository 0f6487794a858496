// Events: a store's log newest first, a type filter, one event opened as
// JSON, and a live tail over the event stream.
import { get, q, storePath, stream } from './api.js';
import { h, replace, table, id, relTime, empty, errorBox, pretty, badge, field } from './ui.js';

const PAGE = 50;
const WINDOW = 1000;

// newest reads up to PAGE events with seq <= hi, newest first, walking
// back a window at a time (a filter may match few of them).
async function newest(store, hi, first, types) {
  const out = [];
  let top = hi;
  for (let i = 0; i < 20 && top >= first && out.length < PAGE; i++) {
    const size = types.length ? WINDOW : PAGE;
    const after = Math.max(first - 1, top - size);
    const page = await get(storePath(store) + '/events' + q({ after, limit: types.length ? WINDOW : size, type: types }));
    const got = page.events.filter((e) => e.seq <= top).reverse();
    out.push(...got);
    top = after;
  }
  return { events: out.slice(0, PAGE), more: top >= first };
}

export async function eventsView(ctx) {
  const store = ctx.store;
  if (!store) {
    replace(ctx.main, h('h1', {}, 'Events'), empty(h('p', {}, 'No store yet: publish an event first.')));
    return {};
  }
  const typesIn = h('input', { type: 'search', value: ctx.query.get('type') || '', placeholder: 'order.* or store/order/*' });
  const liveBox = h('input', { type: 'checkbox' });
  const status = h('span', { class: 'muted', 'aria-live': 'polite' });
  const list = h('div');
  const detail = h('aside', { class: 'detail', 'aria-label': 'Event' });
  let events = [], more = false, selected = null, abort = null;
  const patterns = () => typesIn.value.split(/[\s,]+/).filter(Boolean);

  const show = (ev) => {
    selected = ev;
    replace(detail, h('div', { class: 'detail-head' }, h('h2', {}, ev.type), h('button', { type: 'button', onclick: () => { selected = null; replace(detail); draw(); } }, 'Close')),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Seq'), h('dd', {}, ev.seq),
        h('dt', {}, 'Id'), h('dd', {}, id(ev.id)),
        h('dt', {}, 'Time'), h('dd', {}, relTime(ev.timestamp)),
        h('dt', {}, 'Hash'), h('dd', {}, id(ev.hash))),
      pretty(ev));
    draw();
  };
  const draw = (err) => {
    replace(list, errorBox(err), events.length === 0 && !err
      ? empty(h('p', {}, patterns().length ? 'No events match ' + patterns().join(', ') + '.' : `No events in ${store} yet — publish one with `,
          patterns().length ? null : h('code', {}, `herald publish ${store} order.created --data '{}'`)))
      : [table([
        ['Seq', (e) => e.seq, { num: true }],
        ['Type', (e) => e.type],
        ['Id', (e) => id(e.id, { copyable: false }), { hide: true }],
        ['Time', (e) => relTime(e.timestamp)],
      ], events, { label: 'Events', onRow: show, selected: (e) => selected && e.seq === selected.seq }),
      more ? h('button', { type: 'button', onclick: older }, 'Older events') : null]);
  };
  const load = async () => {
    try {
      const st = await get(storePath(store));
      const r = await newest(store, st.last_seq, st.first_seq || 1, patterns());
      events = r.events; more = r.more;
      draw();
      return st.last_seq;
    } catch (err) { draw(err); return 0; }
  };
  const older = async () => {
    try {
      const st = await get(storePath(store));
      const r = await newest(store, events[events.length - 1].seq - 1, st.first_seq || 1, patterns());
      events = events.concat(r.events); more = r.more;
      draw();
    } catch (err) { draw(err); }
  };
  const live = async () => {
    if (abort) { abort.abort(); abort = null; }
    if (!liveBox.checked) { replace(status); return; }
    abort = new AbortController();
    const after = events.length ? events[0].seq : await load();
    stream(storePath(store) + '/events/stream' + q({ after, type: patterns() }), {
      signal: abort.signal,
      onEvent: (_id, _type, ev) => { events.unshift(ev); if (events.length > 500) events.pop(); draw(); },
      onState: (s) => replace(status, s === 'live' ? badge('live', 'live') : errorBox(s)),
    });
  };
  typesIn.addEventListener('change', async () => { await load(); live(); });
  liveBox.addEventListener('change', live);

  replace(ctx.main,
    h('header', { class: 'page-head' }, h('h1', {}, 'Events in ', store)),
    h('div', { class: 'toolbar' },
      field('Type filter', typesIn),
      h('label', { class: 'check' }, liveBox, ' Live tail'), status),
    h('div', { class: 'split' }, list, detail));
  await load();
  return {
    refresh: () => { if (!liveBox.checked && !selected) load(); },
    stop: () => abort?.abort(),
  };
}
