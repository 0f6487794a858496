// Cluster health and leadership transfer; API keys (admin).
import { get, post, call, enc } from './api.js';
import { h, replace, table, id, relTime, errorBox, badge, confirm, field, copyButton, empty } from './ui.js';

export async function clusterView(ctx) {
  const body = h('div');
  const msg = h('div', { 'aria-live': 'polite' });
  const load = async () => {
    let c;
    try { c = await get('/v1/cluster'); } catch (err) { replace(body, errorBox(err)); return; }
    replace(body,
      h('dl', { class: 'facts inline' },
        h('dt', {}, 'Leader'), h('dd', {}, c.leader ? h('strong', {}, c.leader) : badge('unreachable', 'no leader')),
        h('dt', {}, 'Answered by'), h('dd', {}, c.id),
        h('dt', {}, 'Commit index'), h('dd', {}, c.commit_index.toLocaleString()),
        h('dt', {}, 'Applied index'), h('dd', {}, c.applied_index.toLocaleString())),
      table([
        ['Node', (n) => n.id],
        ['State', (n) => badge(n.state)],
        ['Suffrage', (n) => n.suffrage === 'voter' ? 'voter' : badge('staging', n.suffrage)],
        ['API', (n) => h('code', {}, n.http_addr || '—'), { hide: true }],
        ['Raft', (n) => h('code', {}, n.raft_addr), { hide: true }],
      ], c.nodes, { label: 'Nodes' }),
      c.nodes.length > 1 ? h('div', { class: 'actions' }, h('button', { type: 'button', onclick: async () => {
        if (!(await confirm('Transfer leadership?', `${c.leader} stops leading; an up-to-date voter takes over. Writes pause for an election.`, 'Transfer'))) return;
        replace(msg, h('p', { class: 'muted' }, 'Transferring…'));
        try {
          const r = await post('/v1/cluster/leader/transfer', {});
          replace(msg, h('p', { class: 'ok', role: 'status' }, 'The leader is now ', h('strong', {}, r.leader), '.'));
          load();
        } catch (err) { replace(msg, errorBox(err)); }
      } }, 'Transfer leadership')) : null);
  };
  replace(ctx.main, h('header', { class: 'page-head' }, h('h1', {}, 'Cluster')), msg, body);
  await load();
  return { refresh: load };
}

export async function keysView(ctx) {
  const body = h('div');
  const out = h('div', { 'aria-live': 'polite' });
  const load = async () => {
    let keys;
    try { keys = (await get('/v1/keys')).keys; } catch (err) { replace(body, errorBox(err)); return; }
    replace(body, keys.length ? table([
      ['Name', (k) => k.name],
      ['Id', (k) => id(k.id)],
      ['Rights', (k) => k.admin ? h('strong', {}, 'admin') : k.grants.map((g) => g.actions.join('+') + ' on ' + g.stores.join(', ')).join('; ')],
      ['Created', (k) => relTime(k.created_at), { hide: true }],
      ['Expires', (k) => k.expires_at ? relTime(k.expires_at) : 'never', { hide: true }],
      ['Last used', (k) => relTime(k.last_used_at), { hide: true }],
      ['', (k) => k.id === ctx.self.key_id ? h('span', { class: 'muted' }, 'this key') : h('button', { type: 'button', class: 'small danger', onclick: async () => {
        if (!(await confirm('Revoke key?', `Revoke ${k.name} (${k.id})? Every request with it is refused from now on.`, 'Revoke'))) return;
        try { await call('DELETE', '/v1/keys/' + enc(k.id)); load(); } catch (err) { replace(out, errorBox(err)); }
      } }, 'Revoke')],
    ], keys, { label: 'API keys' }) : empty('No keys.'));
  };
  const name = h('input', { type: 'text', required: true, placeholder: 'checkout-publisher' });
  const admin = h('input', { type: 'checkbox' });
  const stores = h('input', { type: 'text', placeholder: 'shop-1, plant-*' });
  const acts = ['publish', 'read', 'subscriptions'].map((a) => h('input', { type: 'checkbox', value: a, 'aria-label': a }));
  const form = h('form', { class: 'card form', 'aria-label': 'Create key' },
    h('h2', {}, 'Create a key'), field('Name', name),
    h('label', { class: 'check' }, admin, ' Admin (everything)'),
    field('Stores', stores, 'Store names, or a prefix and *.'),
    h('fieldset', {}, h('legend', {}, 'Allowed'), acts.map((c) => h('label', { class: 'check' }, c, ' ', c.value))),
    h('button', { type: 'submit', class: 'primary' }, 'Create key'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const req = { name: name.value.trim(), admin: admin.checked };
    if (!admin.checked) req.grants = [{ stores: stores.value.split(/[\s,]+/).filter(Boolean), actions: acts.filter((c) => c.checked).map((c) => c.value) }];
    try {
      const k = await post('/v1/keys', req);
      replace(out, h('section', { class: 'secret card', 'aria-label': 'New key' }, h('h2', {}, 'New key'),
        h('p', {}, 'Shown once: Herald keeps only its hash.'),
        h('div', { class: 'secret-value' }, h('code', {}, k.key), copyButton(k.key, 'Copy key'))));
      form.reset();
      load();
    } catch (err) { replace(out, errorBox(err)); }
  });
  replace(ctx.main, h('header', { class: 'page-head' }, h('h1', {}, 'API keys')), body, out, form);
  await load();
  return { refresh: () => { if (!form.contains(document.activeElement)) load(); } };
}
