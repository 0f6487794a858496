// The dashboard's shell: sign in, the rail, the store chosen once and
// kept in the URL, and a router on location.hash.
import { get, session, whenUnauthorized, APIError } from './api.js';
import { h, replace, errorBox, field, can } from './ui.js';
import { storesView } from './stores.js';
import { eventsView } from './events.js';
import { webhooksView, webhookForm } from './webhooks.js';
import { deliveriesView } from './deliveries.js';
import { clusterView, keysView } from './cluster.js';

const app = document.getElementById('app');
const state = { self: null, stores: [], view: null, timer: null, signinMessage: null };

whenUnauthorized((err) => {
  session.clear();
  state.self = null;
  state.signinMessage = err;
  go('#/signin');
});

export function go(hash) {
  if (location.hash === hash) route(); else location.hash = hash;
}

function parse() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, qs] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { parts, query: new URLSearchParams(qs || '') };
}

async function signin() {
  const input = h('input', { type: 'password', name: 'key', autocomplete: 'off', spellcheck: 'false', required: true, placeholder: 'hk_…' });
  const msg = h('div', {}, errorBox(state.signinMessage));
  state.signinMessage = null;
  const form = h('form', { class: 'signin card', 'aria-label': 'Sign in' },
    h('h1', {}, 'Herald'),
    h('p', { class: 'muted' }, 'Sign in with an API key. It stays in this tab (sessionStorage) and is sent only to this node.'),
    field('API key', input, 'A fresh node writes its admin key to DATA/admin.key.'),
    msg,
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    replace(msg);
    try {
      const self = await get('/v1/self', { key: input.value.trim() });
      session.set(input.value.trim());
      state.self = self;
      go('#/stores');
    } catch (err) {
      replace(msg, errorBox(err.status === 401 ? new APIError(401, err.code, 'That key was refused: ' + err.message) : err));
    }
  });
  replace(app, h('main', { class: 'signin-page' }, form));
  input.focus();
}

function rail(section, store) {
  const self = state.self;
  const link = (label, hash, on, show = true) => show ? h('li', {}, h('a', { href: hash, 'aria-current': on ? 'page' : undefined }, label)) : null;
  const sel = h('select', { 'aria-label': 'Store' },
    state.stores.length ? null : h('option', { value: '' }, '(no stores)'),
    state.stores.map((s) => h('option', { value: s.store, selected: s.store === store }, s.store)));
  if (store && !state.stores.some((s) => s.store === store)) sel.prepend(h('option', { value: store, selected: true }, store));
  sel.addEventListener('change', () => {
    const sec = ['events', 'webhooks', 'deliveries'].includes(section) ? section : 'events';
    go(`#/stores/${encodeURIComponent(sel.value)}/${sec}`);
  });
  const s = store ? encodeURIComponent(store) : '';
  return h('nav', { class: 'rail', 'aria-label': 'Main' },
    h('div', { class: 'brand' }, 'Herald'),
    h('div', { class: 'store-pick' }, sel),
    h('ul', {},
      link('Stores', '#/stores', section === 'stores'),
      link('Events', `#/stores/${s}/events`, section === 'events', store && can(self, 'read', store)),
      link('Webhooks', `#/stores/${s}/webhooks`, section === 'webhooks', store && can(self, 'subscriptions', store)),
      link('Deliveries', `#/stores/${s}/deliveries`, section === 'deliveries', store && can(self, 'subscriptions', store)),
      link('Cluster', '#/cluster', section === 'cluster', self.admin),
      link('Keys', '#/keys', section === 'keys', self.admin)),
    h('div', { class: 'who' },
      h('span', { title: self.key_id || '' }, 'Signed in as ', h('strong', {}, self.name)),
      h('button', { type: 'button', onclick: () => { session.clear(); state.self = null; go('#/signin'); } }, 'Sign out')));
}

async function route() {
  clearInterval(state.timer);
  if (state.view?.stop) state.view.stop();
  state.view = null;
  const { parts, query } = parse();
  if (parts[0] === 'signin' || !session.key()) return signin();
  try {
    if (!state.self) state.self = await get('/v1/self');
    state.stores = (await get('/v1/stores')).stores;
  } catch (err) {
    if (err.status === 401) return;
    replace(app, h('main', { class: 'content' }, errorBox(err)));
    return;
  }
  let section = parts[0] || 'stores';
  let store = null;
  if (section === 'stores' && parts[1]) { store = parts[1]; section = parts[2] || 'events'; }
  if (!store && state.stores.length) store = localStorage.getItem('herald.store') || state.stores[0].store;
  if (store && !state.stores.some((s) => s.store === store) && parts[0] !== 'stores') store = state.stores[0]?.store || null;
  if (store) localStorage.setItem('herald.store', store);
  const main = h('main', { class: 'content', id: 'main' });
  replace(app, h('div', { class: 'shell' }, rail(section, store), main));
  const ctx = { self: state.self, stores: state.stores, store, parts: parts.slice(3), query, main, go };
  const views = { stores: storesView, events: eventsView, webhooks: webhooksView, deliveries: deliveriesView, cluster: clusterView, keys: keysView };
  let view = views[section];
  if (section === 'webhooks' && (ctx.parts[0] === 'new' || ctx.parts[1] === 'edit')) view = webhookForm;
  if (!view) { replace(main, errorBox(new Error('No such page: ' + location.hash))); return; }
  try {
    state.view = (await view(ctx)) || {};
  } catch (err) {
    if (err.status === 401) return;
    replace(main, errorBox(err));
    return;
  }
  if (state.view.refresh) {
    state.timer = setInterval(() => { if (document.visibilityState === 'visible') state.view.refresh(); }, 5000);
  }
}

window.addEventListener('hashchange', route);
window.addEventListener('focus', () => state.view?.refresh?.());
route();
