// Stores: every store the key may read, with its log's position.
import { get } from './api.js';
import { h, replace, table, id, relTime, empty, errorBox } from './ui.js';

function retention(r) {
  if (!r || (!r.max_age && !r.max_events)) return h('span', { class: 'muted' }, 'keep all');
  return [r.max_age ? 'max age ' + r.max_age : null, r.max_events ? 'max ' + r.max_events.toLocaleString() + ' events' : null].filter(Boolean).join(', ');
}

export async function storesView(ctx) {
  const body = h('div');
  const render = (stores, err) => {
    replace(body, errorBox(err), stores.length === 0 && !err
      ? empty(h('p', {}, 'No stores yet. A store appears with its first event: ',
          h('code', {}, `herald publish shop-1 order.created --data '{}'`)))
      : table([
        ['Store', (s) => h('a', { href: `#/stores/${encodeURIComponent(s.store)}/events` }, s.store)],
        ['Events', (s) => s.events.toLocaleString(), { num: true }],
        ['First seq', (s) => s.first_seq.toLocaleString(), { num: true, hide: true }],
        ['Last seq', (s) => s.last_seq.toLocaleString(), { num: true }],
        ['Head hash', (s) => id(s.head_hash), { hide: true }],
        ['Retention', (s) => retention(s.retention), { hide: true }],
        ['Held back', (s) => s.held_back ? h('span', { title: 'by ' + (s.held_by || []).join(', ') }, s.held_back.toLocaleString()) : '0', { num: true, hide: true }],
        ['Created', (s) => relTime(s.created_at), { hide: true }],
      ], stores, { label: 'Stores', onRow: (s) => ctx.go(`#/stores/${encodeURIComponent(s.store)}/events`) }));
  };
  render(ctx.stores);
  replace(ctx.main, h('header', { class: 'page-head' }, h('h1', {}, 'Stores')), body);
  return {
    refresh: async () => {
      try { render((await get('/v1/stores')).stores); } catch (err) { if (err.status !== 401) render([], err); }
    },
  };
}
