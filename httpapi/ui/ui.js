// Small render helpers. Text always goes in as text (textContent), never
// as HTML: what the API returns cannot become markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// One vocabulary of states, each with a word, an icon and a colour.
const STATES = {
  succeeded: ['✓', 'ok'], active: ['●', 'ok'], leader: ['★', 'ok'], live: ['●', 'ok'],
  pending: ['◷', 'warn'], retrying: ['◷', 'warn'], probing: ['◐', 'warn'], staging: ['◷', 'warn'],
  failed: ['✕', 'bad'], dead: ['✖', 'dead'], unreachable: ['✕', 'bad'],
  paused: ['❚❚', 'off'], disabled: ['⊘', 'off'], follower: ['○', 'info'], candidate: ['◌', 'warn'],
};

export function badge(state, label) {
  const [icon, tone] = STATES[state] || ['•', 'info'];
  return h('span', { class: 'badge ' + tone, title: label || state }, h('span', { 'aria-hidden': 'true' }, icon), ' ', label || state);
}

export function relTime(t) {
  if (!t) return h('span', { class: 'muted' }, '—');
  const d = new Date(t);
  const s = (Date.now() - d.getTime()) / 1000;
  const a = Math.abs(s);
  let txt;
  if (a < 5) txt = 'just now';
  else if (a < 90) txt = Math.round(a) + ' s';
  else if (a < 5400) txt = Math.round(a / 60) + ' min';
  else if (a < 129600) txt = Math.round(a / 3600) + ' h';
  else txt = Math.round(a / 86400) + ' d';
  if (a >= 5) txt = s >= 0 ? txt + ' ago' : 'in ' + txt;
  return h('time', { datetime: d.toISOString(), title: d.toISOString() }, txt);
}

export function age(t) {
  if (!t) return '';
  const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
  if (s < 90) return Math.round(s) + ' s';
  if (s < 5400) return Math.round(s / 60) + ' min';
  if (s < 129600) return Math.round(s / 3600) + ' h';
  return Math.round(s / 86400) + ' d';
}

export async function copy(text, btn) {
  try {
    await navigator.clipboard.writeText(text);
    if (btn) { btn.textContent = 'Copied'; setTimeout(() => { btn.textContent = 'Copy'; }, 1500); }
  } catch {
    if (btn) btn.textContent = 'Select and copy';
  }
}

export function copyButton(text, label = 'Copy') {
  const b = h('button', { type: 'button', class: 'small', 'aria-label': label + ' ' + text.slice(0, 12) });
  b.textContent = 'Copy';
  b.addEventListener('click', (e) => { e.stopPropagation(); copy(text, b); });
  return b;
}

// id shortens an id in the middle; hover shows it whole, the button copies.
export function id(full, { copyable = true } = {}) {
  if (!full) return '';
  const short = full.length > 16 ? full.slice(0, 8) + '…' + full.slice(-4) : full;
  return h('span', { class: 'id' }, h('code', { title: full }, short), copyable ? copyButton(full) : null);
}

export function errorBox(err) {
  if (!err) return null;
  const code = err.code ? h('code', {}, err.code) : null;
  return h('div', { class: 'error', role: 'alert' }, code, code ? ': ' : '', err.message || String(err));
}

export function empty(...children) {
  return h('div', { class: 'empty' }, ...children);
}

// table renders rows; cols are [header, cell(row), {num, hide}]. onRow
// makes rows activatable by click and by keyboard.
export function table(cols, rows, { onRow, label, selected } = {}) {
  const cls = (c) => [c[2]?.num ? 'num' : '', c[2]?.hide ? 'hide-sm' : ''].join(' ').trim() || undefined;
  return h('div', { class: 'table-wrap' }, h('table', { 'aria-label': label },
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col', class: cls(c) }, c[0])))),
    h('tbody', {}, rows.map((r) => {
      const tr = h('tr', onRow ? { tabindex: 0, class: selected && selected(r) ? 'clickable selected' : 'clickable' } : {},
        cols.map((c) => h('td', { class: cls(c) }, c[1](r))));
      if (onRow) {
        tr.addEventListener('click', () => onRow(r));
        tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') onRow(r); });
      }
      return tr;
    }))));
}

export function pretty(value) {
  return h('pre', { class: 'json' }, JSON.stringify(value, null, 2));
}

// bodyView shows a body pretty-printed when it is JSON, with a raw toggle.
export function bodyView(text) {
  if (!text) return h('span', { class: 'muted' }, '(empty)');
  let parsed;
  try { parsed = JSON.stringify(JSON.parse(text), null, 2); } catch { return h('pre', {}, text); }
  const pre = h('pre', { class: 'json' }, parsed);
  let raw = false;
  const btn = h('button', { type: 'button', class: 'small', onclick: () => { raw = !raw; pre.textContent = raw ? text : parsed; btn.textContent = raw ? 'Pretty' : 'Raw'; } }, 'Raw');
  return h('div', {}, btn, pre);
}

export function headersView(hdrs) {
  const keys = Object.keys(hdrs || {}).sort();
  if (!keys.length) return h('span', { class: 'muted' }, '(none)');
  return h('dl', { class: 'headers' }, keys.map((k) => [h('dt', {}, k), h('dd', {}, hdrs[k])]));
}

// confirm asks in a modal dialog; resolves true when the user confirms.
export function confirm(title, message, action = 'Confirm', danger = true) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { 'aria-label': title },
      h('form', { method: 'dialog' },
        h('h2', {}, title), h('p', {}, message),
        h('div', { class: 'actions' },
          h('button', { value: 'cancel', type: 'submit' }, 'Cancel'),
          h('button', { value: 'ok', type: 'submit', class: danger ? 'danger' : 'primary' }, action))));
    dlg.addEventListener('close', () => { resolve(dlg.returnValue === 'ok'); dlg.remove(); });
    document.body.append(dlg);
    dlg.showModal();
  });
}

// modal shows content in a dialog with a Close button; returns the dialog.
export function modal(title, ...content) {
  const dlg = h('dialog', { 'aria-label': title, class: 'wide' },
    h('div', { class: 'dialog-head' }, h('h2', {}, title),
      h('button', { type: 'button', onclick: () => dlg.close() }, 'Close')),
    h('div', { class: 'dialog-body' }, ...content));
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
  return dlg;
}

export function field(label, input, hint) {
  const idv = input.id || ('f' + Math.random().toString(36).slice(2));
  input.id = idv;
  return h('div', { class: 'field' }, h('label', { for: idv }, label), input, hint ? h('div', { class: 'hint' }, hint) : null);
}

// matchStore is the API's store pattern: a name, or a prefix and "*";
// "*" never reaches _herald.
function matchStore(p, store) {
  if (p === store) return true;
  if (!p.endsWith('*')) return false;
  if (store === '_herald') return false;
  return store.startsWith(p.slice(0, -1));
}

export function can(self, action, store) {
  if (!self) return false;
  if (self.admin) return true;
  if (action === 'admin') return false;
  return (self.grants || []).some((g) => g.actions.includes(action) && (store === undefined || g.stores.some((p) => matchStore(p, store))));
}
