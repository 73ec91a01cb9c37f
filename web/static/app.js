// siphook operator UI: recordings search, recording detail (player, waveforms, timeline) and live sessions.
// A plain ES2020 module with no dependencies, served by package web. Every string that comes from the API is
// put into the page with textContent or setAttribute, never parsed as HTML.

const API = '/api/v1';
const TOKEN_KEY = 'siphook_token';
const PAGE_SIZE = 50;
const LIVE_REFRESH_MS = 2000;

// ---------------------------------------------------------------------------------------------------------
// DOM helpers

const $ = (sel, root = document) => root.querySelector(sel);

// el builds an element. attrs: class, text, on<event> handlers, booleans (true → empty attribute) and other
// attributes as strings. Children are nodes or strings (added as text); null, undefined and false are skipped.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// classToken makes an API value (a state, a source) safe to use in a class name.
const classToken = (s) => String(s || '').toLowerCase().replace(/[^a-z0-9_-]/g, '');

function badge(value, kind) {
  const v = value || '—';
  return el('span', { class: `badge ${kind}-${classToken(value) || 'none'}`, text: v });
}

// ---------------------------------------------------------------------------------------------------------
// Formatting

const pad2 = (n) => String(n).padStart(2, '0');

// fmtTime shows an RFC 3339 time in local time as YYYY-MM-DD HH:MM:SS.
function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

// fmtDur shows seconds as m:ss, or h:mm:ss from an hour on. It floors, as media players do, so a total and
// a position agree everywhere (a 3.5 s recording is 0:03 long, and its end is at 0:03).
function fmtDur(sec) {
  if (!Number.isFinite(sec) || sec < 0) sec = 0;
  const s = Math.floor(sec + 1e-6);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0 ? `${h}:${pad2(m)}:${pad2(r)}` : `${m}:${pad2(r)}`;
}

// secondsTip gives the exact length behind a floored m:ss, for a tooltip: "3.51 s".
const secondsTip = (sec) => (Number.isFinite(sec) && sec > 0 ? `${sec.toFixed(2)} s` : null);

// fmtAgo shows an elapsed number of seconds as "45s", "2m 10s" or "1h 05m".
function fmtAgo(sec) {
  const s = Math.max(0, Math.floor(sec));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad2(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${pad2(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

// fmtOffset shows a position in the recording to a tenth of a second: 0:01.2, 1:02:03.4.
function fmtOffset(sec) {
  if (!Number.isFinite(sec) || sec < 0) sec = 0;
  const tenths = Math.round(sec * 10);
  return `${fmtDur(Math.floor(tenths / 10))}.${tenths % 10}`;
}

// trimNum shows a number with at most `digits` decimals and no trailing zeros: 0.1 rather than 0.1000000001.
const trimNum = (x, digits) => String(Number(x.toFixed(digits)));

// fmtPct shows a ratio (0–1) as a percentage: whole per cents from 10 % on, else to a tenth ("3.4%");
// whole always when `whole`.
function fmtPct(ratio, whole = false) {
  const p = Number.isFinite(ratio) ? Math.max(0, ratio) * 100 : 0;
  return `${whole || p >= 10 ? Math.round(p) : trimNum(p, 1)}%`;
}

// MOS ratings: 4 and over is good, from 3.5 fair, below that poor.
const mosRating = (m) => (Number.isFinite(m) && m > 0 ? (m >= 4 ? 'good' : m >= 3.5 ? 'fair' : 'poor') : null);

// fmtMOS shows a MOS to two decimals, or `digits`; it floors, so the figure never looks better than its rating
// (3.98 is fair, and shows as 3.9, not 4.0).
const fmtMOS = (m, digits = 2) => (Math.floor(m * 10 ** digits + 1e-6) / 10 ** digits).toFixed(digits);

// Words of session keys written otherwise than in lower case.
const ACRONYMS = new Set(['id', 'ani', 'dnis', 'sip', 'sips', 'ip', 'ucid', 'uui', 'tls', 'srtp', 'rtp', 'sdp', 'url', 'uri',
  'src', 'srs', 'cti', 'ivr', 'tcp', 'udp']);
const SPECIAL_WORDS = { ids: 'IDs', audiohook: 'AudioHook', siprec: 'SIPREC' };

// factLabel turns a session key such as sip_call_id into a label: "SIP call ID", "AudioHook session IDs".
function factLabel(key) {
  const words = String(key).split(/[_\s]+/).filter(Boolean).map((w) => {
    const l = w.toLowerCase();
    if (ACRONYMS.has(l)) return l.toUpperCase();
    return SPECIAL_WORDS[l] || l;
  });
  if (words.length && words[0] === words[0].toLowerCase()) words[0] = words[0].charAt(0).toUpperCase() + words[0].slice(1);
  return words.join(' ');
}

const shortID = (s, n = 8) => (s && s.length > n + 1 ? s.slice(0, n) + '…' : s || '');
const agentName = (a) => (a && (a.name || a.user_id)) || '';
const agentNames = (list) => (list || []).map(agentName).filter(Boolean).join(', ');
const keyText = (k) => `${k.kind} ${k.value}`;

// fmtNumber shows an address as the number (or user) it names: tel:+15550100;phone-context=x and
// sip:+15550100@sbc.example;user=phone are both +15550100. Anything else is shown as it is.
function fmtNumber(s) {
  const v = String(s || '').trim();
  const m = /^(tel|sips?):([^;?]*)/i.exec(v);
  if (!m) return v;
  let user = m[2];
  if (m[1].toLowerCase() !== 'tel') {
    const at = user.lastIndexOf('@');
    if (at > 0) user = user.slice(0, at);
  }
  try {
    user = decodeURIComponent(user);
  } catch {
    // keep it as written
  }
  return user || v;
}

// uniqueKeys drops repeated (kind, value) pairs: the same UCID often comes from two origins.
function uniqueKeys(keys) {
  const seen = new Set();
  return (keys || []).filter((k) => {
    const id = `${k.kind}\u0000${k.value}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

// channelLabel names a channel of the document. SIPREC channels are named after their participant (the SDP
// label, "1" or "2", says little): "caller · Carol Customer", or the number when there is no name. Other
// channels (AudioHook's external and internal) keep their label.
function channelLabel(doc, c) {
  const fallback = (c && c.label) || (c ? `channel ${c.index}` : '');
  if (!c || doc.source !== 'siprec' || !c.participant_id) return fallback;
  const p = (doc.participants || []).find((x) => x.id === c.participant_id);
  if (!p) return fallback;
  const who = p.name || fmtNumber(p.aor);
  return [p.role, who].filter(Boolean).join(' · ') || fallback;
}

// toLocalInput turns an RFC 3339 time into a datetime-local input value.
function toLocalInput(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}T` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

// toRFC3339 turns a datetime-local input value (local time) into RFC 3339 UTC, or '' when invalid.
function toRFC3339(local) {
  const d = new Date(local);
  if (Number.isNaN(d.getTime())) return '';
  return d.toISOString().replace(/\.000Z$/, 'Z');
}

// ---------------------------------------------------------------------------------------------------------
// Status line

function showStatus(msg, isError = false) {
  const s = $('#status');
  s.textContent = msg || '';
  s.classList.toggle('error', !!(msg && isError));
}

function showError(err) {
  if (err && err.name === 'AbortError') return;
  showStatus(err instanceof Error ? err.message : String(err), true);
}

// ---------------------------------------------------------------------------------------------------------
// Auth: a token in localStorage, sent as a Bearer header by fetch and as a cookie (path /api/) so that the
// <audio> element and the download links, which cannot set headers, are authorised too.

function getToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

// cookieSafe: what a cookie value may hold (RFC 6265 cookie-octet). Other tokens go by header only.
const cookieSafe = (s) => /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+$/.test(s);

function setCookie(token) {
  const secure = location.protocol === 'https:' ? '; Secure' : '';
  if (token && cookieSafe(token)) {
    document.cookie = `${TOKEN_KEY}=${token}; path=/api/; SameSite=Strict${secure}`;
  } else {
    document.cookie = `${TOKEN_KEY}=; path=/api/; Max-Age=0; SameSite=Strict${secure}`;
  }
}

function setToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: the token lasts as long as the cookie
  }
  setCookie(token);
  $('#token-clear').hidden = !token;
}

function showTokenForm(message) {
  const form = $('#token-form');
  $('#token-msg').textContent = message;
  if (form.hidden) {
    form.hidden = false;
    $('#token-input').value = '';
    $('#token-input').focus();
  }
}

class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'APIError';
    this.status = status;
  }
}

// api GETs a JSON document from the API. A 401 asks for a token; other failures throw an APIError whose
// message is fit for the status line.
async function api(path, signal) {
  const headers = { Accept: 'application/json' };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(API + path, { headers, signal, credentials: 'same-origin', cache: 'no-store' });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new APIError(0, `Cannot reach the server: ${err.message}`);
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON: keep the status alone
  }
  const detail = body && typeof body.error === 'string' ? body.error : '';
  if (res.status === 401) {
    showTokenForm(token
      ? 'The stored API token was refused. Enter a valid token.'
      : 'This server needs an API token. It is kept in this browser and sent with every request.');
    throw new APIError(401, 'An API token is required.');
  }
  if (res.status === 403) {
    // With no token, a 403 means the server answers only local clients until tokens are configured.
    throw new APIError(403, token
      ? `Forbidden: this token may not do that${detail ? ` (${detail})` : ''}.`
      : `Forbidden: ${detail || 'this client may not use the API without a token'}.`);
  }
  if (!res.ok) throw new APIError(res.status, `${res.status} ${detail || res.statusText || 'request failed'}`);
  if (body === null) throw new APIError(res.status, 'The server answered with something other than JSON.');
  $('#token-form').hidden = true;
  return body;
}

// ---------------------------------------------------------------------------------------------------------
// Routing: #/ (search, filters in the query), #/recordings/{id}, #/live.

let current = null; // the shown view: { cleanup() }

function parseHash() {
  let h = location.hash.replace(/^#/, '');
  if (!h.startsWith('/')) h = '/' + h;
  const q = h.indexOf('?');
  return {
    path: q >= 0 ? h.slice(0, q) : h,
    params: new URLSearchParams(q >= 0 ? h.slice(q + 1) : ''),
  };
}

function showView(name, title) {
  for (const v of document.querySelectorAll('main > .view')) v.hidden = v.id !== `view-${name}`;
  $('#nav-recordings').classList.toggle('active', name === 'search' || name === 'recording');
  $('#nav-live').classList.toggle('active', name === 'live');
  document.title = `${title} · siphook`;
}

function route() {
  if (current) current.cleanup();
  current = null;
  showStatus('');
  const { path, params } = parseHash();
  let m;
  if (path === '/') {
    current = searchView(params);
  } else if ((m = /^\/recordings\/([^/]+)$/.exec(path))) {
    let id;
    try {
      id = decodeURIComponent(m[1]);
    } catch {
      id = m[1];
    }
    current = recordingView(id);
  } else if (path === '/live') {
    current = liveView();
  } else {
    showView('missing', 'Not found');
    current = { cleanup() {} };
  }
}

// ---------------------------------------------------------------------------------------------------------
// Recordings search

// FILTERS maps the form's inputs to the API's (and the hash's) query parameters, with how the input shows the
// value: 'time' (datetime-local in local time, RFC 3339 in the query), 'percent' (per cent in the form, a
// ratio 0–1 in the query), 'number', or as it is.
const FILTERS = [
  ['f-agent', 'agent'],
  ['f-conversation', 'conversation_id'],
  ['f-ani', 'ani'],
  ['f-dnis', 'dnis'],
  ['f-from', 'from', 'time'],
  ['f-to', 'to', 'time'],
  ['f-direction', 'direction'],
  ['f-matched', 'matched'],
  ['f-source', 'source'],
  ['f-silence-min', 'silence_ratio_min', 'percent'],
  ['f-talkover-min', 'talk_over_ratio_min', 'percent'],
  ['f-mos-max', 'mos_max', 'number'],
];
// Also passed through from the hash to the API, though the form has no field for them.
const EXTRA_PARAMS = ['tenant', 'state', 'silence_ratio_max', 'talk_over_ratio_max', 'mos_min'];

// Columns of the results table.
const RESULT_COLS = 11;

// filterInputValue is what a filter's input shows for the query value v.
function filterInputValue(kind, v) {
  if (!v) return '';
  if (kind === 'time') return toLocalInput(v);
  if (kind === 'percent') {
    const x = Number(v);
    return Number.isFinite(x) ? trimNum(x * 100, 4) : '';
  }
  return v;
}

function searchView(params) {
  showView('search', 'Recordings');
  const ctl = new AbortController();
  const tbody = $('#results tbody');
  const more = $('#more');
  const total = $('#total');

  for (const [id, name, kind] of FILTERS) $(`#${id}`).value = filterInputValue(kind, params.get(name) || '');

  const query = new URLSearchParams();
  for (const [, name] of FILTERS) if (params.get(name)) query.set(name, params.get(name));
  for (const name of EXTRA_PARAMS) if (params.get(name)) query.set(name, params.get(name));
  query.set('limit', String(PAGE_SIZE));

  tbody.replaceChildren(el('tr', { class: 'placeholder' }, el('td', { colspan: RESULT_COLS, text: 'Loading…' })));
  total.textContent = '';
  more.hidden = true;
  let shown = 0;
  let cursor = '';

  async function load() {
    const q = new URLSearchParams(query);
    if (cursor) q.set('cursor', cursor);
    more.disabled = true;
    try {
      const page = await api(`/recordings?${q}`, ctl.signal);
      if (!cursor) tbody.replaceChildren();
      const recs = Array.isArray(page.recordings) ? page.recordings : [];
      for (const r of recs) tbody.append(recordingRow(r));
      shown += recs.length;
      if (shown === 0) {
        tbody.replaceChildren(el('tr', { class: 'placeholder' },
          el('td', { colspan: RESULT_COLS, text: 'No recordings match these filters.' })));
      }
      const n = Number.isFinite(page.total) ? page.total : shown;
      total.textContent = `${n} recording${n === 1 ? '' : 's'}` + (shown < n ? ` · showing ${shown}` : '');
      cursor = page.next_cursor || '';
      more.hidden = !cursor;
      showStatus('');
    } catch (err) {
      if (ctl.signal.aborted) return;
      if (!shown) {
        tbody.replaceChildren(el('tr', { class: 'placeholder' }, el('td', {
          colspan: RESULT_COLS,
          text: err.status === 401 ? 'Enter an API token to see the recordings.' : 'The recordings could not be loaded.',
        })));
      }
      showError(err);
    } finally {
      more.disabled = false;
    }
  }

  const onMore = () => load();
  more.addEventListener('click', onMore);
  load();
  return {
    cleanup() {
      ctl.abort();
      more.removeEventListener('click', onMore);
    },
  };
}

function recordingHref(id) {
  return `#/recordings/${encodeURIComponent(id)}`;
}

function recordingRow(r) {
  const href = recordingHref(r.id);
  // Every cell is one line, cut with an ellipsis (style.css); the title holds the whole value.
  let matched;
  if (r.matched && r.not_recorded) {
    matched = el('td', { class: 'matched-cell', title: `matched by ${r.matched_by || '?'}\nnot recorded: ${r.not_recorded}` },
      el('span', { class: 'ok', text: '✓ ' }), el('span', { class: 'unmatched', text: `not recorded: ${r.not_recorded}` }));
  } else if (r.matched) {
    matched = el('td', { class: 'matched-cell', title: r.matched_by ? `matched by ${r.matched_by}` : 'matched' },
      el('span', { class: 'ok', text: '✓' }));
  } else {
    matched = el('td', { class: 'matched-cell', title: `not matched: ${r.unmatched || 'never matched to a CTI call'}` },
      el('span', { class: 'unmatched', text: `✗ ${r.unmatched || 'unmatched'}` }));
  }
  const agents = agentNames(r.agents);
  const tr = el('tr', { class: 'recording', 'data-id': r.id },
    el('td', {}, el('a', { class: 'recording-link', href, title: r.start || null, text: fmtTime(r.start) })),
    el('td', { class: 'num', title: secondsTip(r.duration_seconds), text: fmtDur(r.duration_seconds) }),
    el('td', {}, badge(r.source, 'source')),
    el('td', { title: r.state || null }, badge(r.state, 'state')),
    qualityCell(r),
    el('td', { text: r.direction || '' }),
    el('td', { title: r.ani || null, text: fmtNumber(r.ani) }),
    el('td', { title: r.dnis || null, text: fmtNumber(r.dnis) }),
    el('td', { title: agents || null, text: agents }),
    el('td', { class: 'mono', title: r.conversation_id || null, text: r.conversation_id || '' }),
    matched,
  );
  tr.addEventListener('click', (ev) => {
    if (ev.target.closest('a') || getSelection().toString()) return;
    location.hash = href;
  });
  return tr;
}

// qualityCell shows a recording's call analytics in one line: the MOS, coloured by its rating, then the
// silence and talk-over shares; the title has them spelt out.
function qualityCell(r) {
  const a = r.analytics;
  if (!a) {
    return el('td', { class: 'quality', title: r.has_audio ? 'no call analytics' : 'no audio, so no call analytics' },
      el('span', { class: 'muted', text: '—' }));
  }
  const rating = mosRating(a.mos);
  const tip = [
    rating ? `MOS ${fmtMOS(a.mos)} (${rating})` : 'MOS not estimated (no RTP)',
    `silence ${fmtPct(a.silence_ratio)} of the call (longest ${fmtOffset(a.longest_silence_sec)})`,
    `talk-over ${fmtPct(a.talk_over_ratio)}`,
    `media errors: ${a.media_errors || 0}`,
  ];
  return el('td', { class: 'quality', title: tip.join('\n') },
    rating
      ? el('span', { class: `mos mos-${rating}`, text: fmtMOS(a.mos, 1) })
      : el('span', { class: 'mos mos-none', text: '—' }),
    ' ',
    el('span', { class: 'ratios', text: `${fmtPct(a.silence_ratio, true)} / ${fmtPct(a.talk_over_ratio, true)}` }));
}

function onSearchSubmit(ev) {
  ev.preventDefault();
  const p = new URLSearchParams();
  for (const [id, name, kind] of FILTERS) {
    const input = $(`#${id}`);
    let v = input.value.trim();
    if (!v) {
      if (input.validity && input.validity.badInput) {
        showStatus(`${input.labels && input.labels[0] ? input.labels[0].textContent : name}: not a number.`, true);
        return;
      }
      continue;
    }
    if (kind === 'time') {
      v = toRFC3339(v);
      if (!v) {
        showStatus(`The ${name} time is not valid.`, true);
        return;
      }
    } else if (kind === 'percent' || kind === 'number') {
      const x = Number(v);
      const [lo, hi] = kind === 'percent' ? [0, 100] : [1, 5];
      if (!Number.isFinite(x) || x < lo || x > hi) {
        showStatus(`${input.labels && input.labels[0] ? input.labels[0].textContent : name}: give a number from ${lo} to ${hi}.`, true);
        return;
      }
      v = kind === 'percent' ? trimNum(x / 100, 6) : String(x);
    }
    p.set(name, v);
  }
  const qs = p.toString();
  const hash = qs ? `#/?${qs}` : '#/';
  if (location.hash === hash) route();
  else location.hash = hash;
}

// ---------------------------------------------------------------------------------------------------------
// Recording detail

function recordingView(id) {
  showView('recording', `Recording ${shortID(id)}`);
  const root = $('#recording');
  root.replaceChildren(el('p', { class: 'muted', text: 'Loading…' }));
  const ctl = new AbortController();
  const cleanups = [];
  api(`/recordings/${encodeURIComponent(id)}`, ctl.signal)
    .then((doc) => {
      if (ctl.signal.aborted) return;
      renderRecording(root, id, doc, ctl.signal, cleanups);
    })
    .catch((err) => {
      if (ctl.signal.aborted) return;
      root.replaceChildren(el('p', { class: 'muted' }, 'The recording could not be loaded. ',
        el('a', { href: '#/', text: 'Back to recordings' })));
      showError(err);
    });
  return {
    cleanup() {
      ctl.abort();
      for (const f of cleanups) f();
      const player = $('#player');
      if (player) {
        player.pause();
        player.removeAttribute('src');
        player.load();
      }
      root.replaceChildren();
    },
  };
}

// offsetOf is where a wall-clock time falls in the recording, in seconds from its start (sample 0).
const offsetOf = (doc, iso) => (new Date(iso).getTime() - new Date(doc.start).getTime()) / 1000;

function renderRecording(root, id, doc, signal, cleanups) {
  const call = doc.call || null;
  const audio = doc.audio && doc.audio.sample_rate > 0 && doc.audio.samples > 0 ? doc.audio : null;
  const audioDur = audio ? audio.samples / audio.sample_rate : 0;
  // One scale for the waveforms and the timeline, so they line up.
  const span = Math.max(audioDur, doc.duration_seconds || 0, 0.001);
  const rel = `/recordings/${encodeURIComponent(id)}`;
  const base = API + rel;

  const head = el('div', { class: 'detail-head' },
    el('div', { class: 'title' },
      el('h2', {}, 'Recording ', el('span', { class: 'mono', text: doc.recording_id || id })),
      badge(doc.source, 'source'), badge(doc.state, 'state'),
      call ? el('span', { class: 'badge matched-yes', text: 'matched' }) : el('span', { class: 'badge matched-no', text: 'unmatched' })),
    el('div', { class: 'downloads' },
      audio ? el('a', { class: 'button', id: 'download-wav', href: `${base}/audio`, download: `${id}.wav`, text: '⤓ WAV' }) : null,
      el('a', { class: 'button', id: 'download-json', href: base, download: `${id}.json`, text: '⤓ JSON' }),
      el('a', { class: 'button', href: '#/', text: '← Recordings' })));

  // Without a call, the caller and the callee stand in for the ANI and the DNIS, as in the search results.
  const party = (role) => (doc.participants || []).find((p) => p.role === role);
  const ani = call ? call.ani : party('caller') && party('caller').aor;
  const dnis = call ? call.dnis : party('callee') && party('callee').aor;
  const facts = [
    ['Start', fmtTime(doc.start)],
    ['End', doc.end ? fmtTime(doc.end) : 'still recording'],
    ['Duration', fmtDur(doc.duration_seconds), null, secondsTip(doc.duration_seconds)],
  ];
  if (call) facts.push(['Conversation', call.conversation_id, 'mono'], ['Direction', call.direction]);
  facts.push(['ANI', fmtNumber(ani), null, ani], ['DNIS', fmtNumber(dnis), null, dnis]);
  if (call) {
    facts.push(
      ['Tenant', call.tenant],
      ['Queue', call.queue_id, 'mono'],
      ['Matched by', matchedBy(call.matched_by)],
      ['Matched at', call.matched_at ? `${fmtTime(call.matched_at)} (${call.match_latency_ms ?? 0} ms)` : ''],
    );
  }
  if (audio) facts.push(['Audio', `${audio.channels} ch · ${audio.sample_rate} Hz · ${audio.format || ''} · ${fmtDur(audioDur)}`]);

  // The source's own facts, less those that repeat a call fact shown above (AudioHook sends the ANI, the
  // DNIS and the conversation id too).
  const shown = new Set([ani, dnis, fmtNumber(ani), fmtNumber(dnis), call && call.conversation_id].filter(Boolean));
  const sessionFacts = Object.entries(doc.session || {})
    .filter(([, v]) => !(v && (shown.has(v) || shown.has(fmtNumber(v)))))
    .map(([k, v]) => [factLabel(k), v, 'mono']);

  const card = el('div', { class: 'card facts-card' }, factList(facts));
  if (sessionFacts.some(([, v]) => v !== undefined && v !== null && v !== '')) {
    const src = doc.source === 'siprec' ? 'SIPREC' : doc.source === 'audiohook' ? 'AudioHook' : doc.source || '';
    card.append(el('h4', { class: 'facts-sub', text: `${src} session`.trim() }), factList(sessionFacts, 'session-facts'));
  }

  const parts = [head, card];

  if (!call || doc.state === 'never_activated' || doc.not_recorded) parts.push(whyBlock(doc, call));

  if (audio) {
    parts.push(playerBlock(doc, base, audioDur, span, signal, cleanups));
  } else {
    parts.push(el('div', { class: 'card muted', id: 'no-audio', text: 'No audio was recorded for this session.' }));
    const segments = (call && call.segments) || [];
    if (segments.length || (doc.pauses || []).length || (doc.events || []).length) {
      parts.push(el('div', { class: 'card' }, timelineBlock(doc, span, null)));
    }
  }

  const agents = el('ul', { id: 'agents', class: 'agents' });
  for (const a of (call && call.agents) || []) {
    agents.append(el('li', {}, el('strong', { text: a.name || a.user_id || '?' }),
      a.name && a.user_id ? el('span', { class: 'muted mono', text: ` ${a.user_id}` }) : null));
  }
  if (!agents.children.length) agents.append(el('li', { class: 'muted', text: call ? 'No agent on this call.' : 'Unknown: not matched to a call.' }));

  const related = call && Array.isArray(call.related_recordings) && call.related_recordings.length
    ? el('ul', { id: 'related' }, call.related_recordings.map((r) =>
      el('li', {}, el('a', { href: recordingHref(r), class: 'mono', text: r }))))
    : null;

  if (doc.analytics) parts.push(analyticsBlock(doc));

  // The channels table is as wide as the page: with the RTP quality columns it does not fit half of it.
  parts.push(section('Channels', table('channels', ['#', 'Channel', 'Codec', ['Recv', 'packets received'],
    ['Expected', 'packets the sequence numbers say were sent'], ['Lost', 'packets lost'],
    ['Loss bursts', 'runs of consecutive lost packets'], ['Reord', 'packets reordered'], ['Dup', 'duplicate packets'],
    ['Late', 'late samples (dropped: their place was already written)'], ['Drop', DROP_TIP],
    ['Jitter (ms)', 'RFC 3550 interarrival jitter at the end of the call'],
    ['MOS', 'ITU-T G.107 E-model estimate for the codec, loss and jitter: 4 and over good, from 3.5 fair, below poor']],
  (doc.channels || []).map((c) => {
    const s = c.stats || {};
    const label = channelLabel(doc, c);
    // Expected is there for every RTP stream; without it (AudioHook) the RTP quality columns do not apply.
    const rtp = Number.isFinite(s.expected);
    const na = ['—', 'num muted', 'no RTP stream'];
    const rating = mosRating(s.mos);
    return [[c.index, 'num'], [label, 'ellip', label !== c.label && c.label ? `SDP label ${c.label}` : label], c.codec,
      [s.received ?? 0, 'num'], rtp ? [s.expected, 'num'] : na, [s.lost ?? 0, 'num' + (s.lost ? ' warn' : '')],
      rtp ? [s.loss_bursts ?? 0, 'num' + (s.loss_bursts ? ' warn' : '')] : na,
      [s.reordered ?? 0, 'num'], [s.duplicates ?? 0, 'num'], [s.late_samples ?? 0, 'num' + (s.late_samples ? ' warn' : '')],
      [s.dropped ?? 0, 'num', DROP_TIP],
      rtp ? [(s.jitter_ms ?? 0).toFixed(1), 'num'] : na,
      rating ? [fmtMOS(s.mos), `num mos-text mos-${rating}`, `${rating}: ${s.mos}`] : rtp ? ['—', 'num muted', 'not estimated'] : na];
  }))));
  parts.push(el('div', { class: 'columns' },
    section('Agents', agents, related ? el('h3', { text: 'Other recordings of this conversation' }) : null, related),
    section('Identifiers', table('identifiers', ['Kind', 'Value', 'Raw', 'Origin'],
      (doc.identifiers || []).map((i) => [i.kind, [i.value, 'mono'], [i.raw, 'mono raw', i.raw], [i.origin, 'nowrap']])))));
  parts.push(el('div', { class: 'columns' },
    section('Participants', table('participants', ['ID', 'Name', 'Address', 'Role', ''],
      (doc.participants || []).map((p) => [[p.id, 'mono break'], p.name, [p.aor, 'break'], p.role, p.left ? 'left' : '']))),
    section('Pauses', table('pauses', ['Offset', 'Length', 'By', 'From', 'To'],
      (doc.pauses || []).map((p) => [[fmtOffset(p.offset_sec), 'num'], [fmtOffset(p.duration_sec), 'num'], pauseBy(p.by),
        fmtTime(p.start), p.end ? fmtTime(p.end) : 'ongoing'])))));
  parts.push(section('Events', table('events', ['At', 'Offset', 'Event', 'Detail'],
    (doc.events || []).map((e) => [fmtTime(e.at), [fmtOffset(offsetOf(doc, e.at)), 'num'], e.type, [e.detail, 'break']]))));

  root.replaceChildren(...parts);
  if (audio) startWaveforms(doc, rel, audioDur, span, signal, cleanups);
}

// factList lays facts out as label–value pairs: [label, value, class of the value, its tooltip]. Empty values
// are left out. A pair is one grid cell, so a value that wraps keeps its label beside it.
function factList(facts, id) {
  const dl = el('dl', { class: 'facts', id: id || null });
  for (const [k, v, cls, tip] of facts) {
    if (v === undefined || v === null || v === '') continue;
    dl.append(el('div', { class: 'fact' },
      el('dt', { text: k }),
      el('dd', { class: cls || null, title: tip && tip !== v ? tip : null }, v instanceof Node ? v : String(v))));
  }
  return dl;
}

// matchedBy shows "ucid 0007…" or "conversation_id be9d…" as the key's kind and its value, which is not
// broken inside when the line wraps.
function matchedBy(s) {
  if (!s) return '';
  const m = /^(\S+)\s+(.+)$/.exec(s);
  if (!m) return s;
  return el('span', { class: 'matched-by' }, el('span', { class: 'muted', text: `${m[1]} ` }), el('span', { class: 'mono key', text: m[2] }));
}

const pauseBy = (by) => (by === 'src' ? 'on hold by the SRC' : by === 'srs' ? 'paused by siphook' : by || '');

const DROP_TIP = 'packets not recorded: session waiting or paused, malformed, unknown payload type';

function section(title, ...content) {
  return el('section', { class: 'card' }, el('h3', { text: title }), ...content);
}

// Media error types, as the recorder writes them.
const MEDIA_ERRORS = {
  ssrc_change: 'SSRC change',
  sequence_reset: 'sequence reset',
  timestamp_jump: 'timestamp jump',
  decrypt_failed: 'decrypt failed',
  codec_change: 'codec change',
};

// analyticsBlock shows what the audio says about the call: the MOS, silence and talk-over of the whole call,
// talk and silence per channel, and the media errors.
function analyticsBlock(doc) {
  const a = doc.analytics;
  const num = (x) => (Number.isFinite(x) ? x : 0);
  const chans = Array.isArray(a.channels) ? a.channels : [];
  const errs = Array.isArray(a.media_errors) ? a.media_errors : [];
  const info = (i) => (doc.channels || []).find((c) => c.index === i);
  const labelOf = (i) => (info(i) ? channelLabel(doc, info(i)) : `channel ${i}`);

  const rating = mosRating(a.mos);
  const stat = (id, label, value, valueCls, note, tip) => el('div', { class: 'stat', id, title: tip || null },
    el('div', { class: 'stat-label', text: label }),
    el('div', { class: `stat-value${valueCls ? ` ${valueCls}` : ''}`, text: value }),
    el('div', { class: 'stat-note', text: note }));
  const stats = el('div', { class: 'stats' },
    stat('an-mos', 'MOS', rating ? fmtMOS(a.mos) : '—', rating ? `mos-text mos-${rating}` : 'muted',
      rating || (doc.source === 'audiohook' ? 'no RTP (AudioHook)' : 'not estimated'),
      'ITU-T G.107 E-model estimate of the worst stream: 4 and over good, from 3.5 fair, below poor'),
    stat('an-silence', 'Silence', fmtPct(num(a.silence_ratio)), null, `${fmtOffset(num(a.silence_sec))} with no one speaking`,
      'share of the recording with no channel speaking'),
    stat('an-talkover', 'Talk-over', fmtPct(num(a.talk_over_ratio)), a.talk_over_ratio >= 0.1 ? 'warn-text' : null,
      `${fmtOffset(num(a.talk_over_sec))} speaking at once`, 'share of the recording with two or more channels speaking'),
    stat('an-longest', 'Longest silence', fmtOffset(num(a.longest_silence_sec)), null, 'no one speaking',
      'longest stretch with no channel speaking'),
    stat('an-errors', 'Media errors', `${errs.length}${a.media_errors_truncated ? '+' : ''}`, errs.length ? 'warn-text' : null,
      errs.length ? 'see below' : 'none', 'SSRC changes, sequence resets, timestamp jumps, decrypt failures, codec changes'));

  // One bar per channel: the talk share filled, the rest silence.
  const bars = el('div', { id: 'talk-bars', class: 'talk-bars' });
  for (const c of chans) {
    const ratio = Math.max(0, Math.min(1, num(c.talk_ratio)));
    const label = labelOf(c.index);
    const fill = el('div', { class: 'talk-fill' });
    fill.style.width = `${ratio * 100}%`;
    bars.append(el('div', { class: 'talk-row', 'data-channel': c.index },
      el('div', { class: 'talk-label', title: label, text: label }),
      el('div', { class: 'talk-bar', title: `talk ${fmtPct(ratio)} · silence ${fmtPct(1 - ratio)}` }, fill),
      el('div', { class: 'talk-nums' },
        el('span', {}, 'talk ', el('strong', { class: 'talk-sec', text: fmtOffset(num(c.talk_sec)) }),
          el('span', { class: 'talk-ratio', text: ` (${fmtPct(ratio)})` })),
        el('span', {}, 'silence ', el('strong', { class: 'silence-sec', text: fmtOffset(num(c.silence_sec)) })),
        el('span', {}, 'longest silence ', el('strong', { class: 'longest-sec', text: fmtOffset(num(c.longest_silence_sec)) })))));
  }
  if (!chans.length) bars.append(el('p', { class: 'muted', text: 'No voice activity per channel.' }));

  const box = el('section', { id: 'analytics', class: 'card analytics' },
    el('h3', { text: 'Analytics' }), stats, bars,
    el('h4', { class: 'facts-sub', text: `Media errors${errs.length ? ` (${errs.length}${a.media_errors_truncated ? '+' : ''})` : ''}` }));
  if (errs.length) {
    box.append(el('div', { class: 'media-errors-wrap' }, table('media-errors', ['Offset', 'Channel', 'Type', 'Detail'],
      errs.map((e) => [[fmtOffset(offsetOf(doc, e.at)), 'num', fmtTime(e.at)], [labelOf(e.channel), 'ellip'],
        [MEDIA_ERRORS[e.type] || e.type, 'nowrap', e.type], [e.detail, 'break']]))));
  } else {
    box.append(el('p', { class: 'muted', id: 'no-media-errors', text: 'No media errors.' }));
  }
  if (a.media_errors_truncated) {
    box.append(el('p', { class: 'muted truncated', id: 'media-errors-truncated',
      text: `Truncated: only the first ${errs.length} media errors were kept; the stream had more.` }));
  }
  return box;
}

// table builds a small table; a header is a text or [text, tooltip], a cell is a value or [value, class, tooltip].
function table(id, headers, rows) {
  const t = el('table', { id, class: 'grid compact' },
    el('thead', {}, el('tr', {}, headers.map((h) => (Array.isArray(h)
      ? el('th', { text: h[0], title: h[1] })
      : el('th', { text: h }))))));
  const body = el('tbody');
  for (const row of rows) {
    body.append(el('tr', {}, row.map((c) => {
      const [v, cls, tip] = Array.isArray(c) ? c : [c, null, null];
      const text = v === undefined || v === null ? '' : String(v);
      return el('td', { class: cls, title: tip || (cls && /\b(break|ellip)\b/.test(cls) && text.length > 24 ? text : null), text });
    })));
  }
  if (!rows.length) body.append(el('tr', { class: 'placeholder' }, el('td', { colspan: headers.length, text: 'none' })));
  t.append(body);
  return t;
}

// whyBlock explains a recording that was never matched to a CTI call (doc.unmatched), or never recorded
// (state never_activated; doc.not_recorded says why when the session was matched).
function whyBlock(doc, call) {
  const notMatched = !call;
  const notRecorded = doc.state === 'never_activated' || !!doc.not_recorded;
  const what = notMatched && notRecorded ? 'recorded or matched' : notRecorded ? 'recorded' : 'matched';
  const box = el('section', { id: 'why', class: 'card why' }, el('h3', { text: `Why this call was not ${what}` }));
  if (notMatched) {
    box.append(el('p', {}, 'This session was never tied to a CTI call, so it has no conversation, agents or call timeline.'));
    box.append(el('p', { class: 'why-reason' }, el('strong', { text: 'Not matched: ' }),
      el('span', { id: 'why-unmatched', text: doc.unmatched || 'no reason was recorded.' })));
  }
  if (doc.not_recorded) {
    box.append(el('p', { class: 'why-reason' }, el('strong', { text: 'Not recorded: ' }),
      el('span', { id: 'why-not-recorded', text: doc.not_recorded })));
  }
  if (doc.state === 'never_activated') {
    box.append(el('p', {},
      'State ', el('code', { text: doc.state }), ': the media session was never activated, so no audio was kept. ' +
      (notMatched
        ? 'Recording starts once the session is matched to a CTI call that is to be recorded; this one never was.'
        : 'It was matched, but the call never reached a state that the recording policy records.')));
  }
  const keys = uniqueKeys(doc.identifiers).map(keyText);
  box.append(el('p', { class: 'muted' }, keys.length
    ? `Keys this session carried: ${keys.join(', ')}.`
    : 'This session carried no UCID or conversation id to match on.'));
  return box;
}

// ---------------------------------------------------------------------------------------------------------
// Player, waveforms and timeline

function playerBlock(doc, base, audioDur, span, signal, cleanups) {
  // The <audio> element plays, without its own controls: the transport below and the waveforms (click to
  // seek) drive it, so there is one position and one duration on the page.
  const player = el('audio', { id: 'player', preload: 'metadata', src: `${base}/audio` });
  const play = el('button', { type: 'button', id: 'play', class: 'primary play', text: '▶ Play' });
  const time = el('span', { id: 'time', class: 'time mono', text: `0:00 / ${fmtDur(audioDur)}` });
  const rate = el('select', { id: 'rate', title: 'Playback speed' },
    ['0.75', '1', '1.25', '1.5', '2'].map((r) => el('option', { value: r, selected: r === '1', text: `${r}×` })));
  const wavesBox = el('div', { id: 'waveforms' });
  const timeline = timelineBlock(doc, span, (t) => seek(t));

  const duration = () => (Number.isFinite(player.duration) && player.duration > 0 ? player.duration : audioDur);
  const seek = (t) => {
    player.currentTime = Math.max(0, Math.min(t, duration()));
    update();
  };

  let frame = 0;
  const update = () => {
    const t = player.currentTime || 0;
    time.textContent = `${fmtDur(t)} / ${fmtDur(duration())}`;
    const pct = `${Math.min(100, (t / span) * 100)}%`;
    for (const ph of document.querySelectorAll('#recording .playhead')) ph.style.left = pct;
    redrawWaves(t);
  };
  const tick = () => {
    update();
    frame = player.paused ? 0 : requestAnimationFrame(tick);
  };

  play.addEventListener('click', () => {
    if (player.paused || player.ended) {
      const p = player.play();
      if (p) p.catch((err) => showError(new Error(`Cannot play: ${err.message}`)));
    } else {
      player.pause();
    }
  });
  player.addEventListener('play', () => {
    play.textContent = '❚❚ Pause';
    if (!frame) frame = requestAnimationFrame(tick);
  });
  player.addEventListener('pause', () => {
    play.textContent = '▶ Play';
    update();
  });
  player.addEventListener('ended', () => {
    play.textContent = '▶ Play';
  });
  for (const ev of ['timeupdate', 'seeked', 'loadedmetadata', 'durationchange']) player.addEventListener(ev, update);
  player.addEventListener('error', () => diagnoseAudio(`${base}/audio`, signal));
  rate.addEventListener('change', () => {
    player.playbackRate = Number(rate.value) || 1;
  });
  const onKey = (ev) => {
    const target = ev.target instanceof Element ? ev.target : null;
    if ((target && target.closest('input, select, textarea, button, a, audio')) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === ' ') {
      ev.preventDefault();
      play.click();
    } else if (ev.key === 'ArrowLeft' || ev.key === 'ArrowRight') {
      ev.preventDefault();
      seek(player.currentTime + (ev.key === 'ArrowLeft' ? -5 : 5));
    }
  };
  document.addEventListener('keydown', onKey);
  cleanups.push(() => {
    document.removeEventListener('keydown', onKey);
    if (frame) cancelAnimationFrame(frame);
  });

  wavesBox.addEventListener('click', (ev) => {
    const body = ev.target.closest('.track-body');
    if (!body) return;
    const r = body.getBoundingClientRect();
    seek(((ev.clientX - r.left) / r.width) * span);
  });

  return el('section', { class: 'card player-card' },
    el('div', { class: 'transport' }, play, time, rate, player),
    wavesBox, timeline,
    el('p', { class: 'muted hint', text: 'Click a waveform or the timeline to seek · space plays or pauses · ← / → skip 5 s' }));
}

// diagnoseAudio explains why the <audio> element failed: it cannot tell us the HTTP status itself.
async function diagnoseAudio(url, signal) {
  if (signal.aborted) return;
  const headers = {};
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    const res = await fetch(url, { method: 'HEAD', headers, signal, credentials: 'same-origin' });
    if (signal.aborted) return;
    if (res.status === 401) {
      showTokenForm('The audio needs an API token. Enter one to play it.');
      showStatus('The audio needs an API token.', true);
    } else if (res.status === 403) {
      showStatus('The audio could not be loaded: this token may not do that.', true);
    } else if (!res.ok) {
      showStatus(`The audio could not be loaded: ${res.status} ${res.statusText}`, true);
    } else {
      showStatus('This browser cannot play the audio file.', true);
    }
  } catch (err) {
    if (!signal.aborted) showError(err);
  }
}

// track is one labelled row of the player: a waveform or a timeline lane. The body carries a playhead.
function track(label, body, cls) {
  return el('div', { class: `track${cls ? ` ${cls}` : ''}` },
    el('div', { class: 'track-label', title: label || null, text: label }),
    el('div', { class: 'track-body' }, body, el('div', { class: 'playhead' })));
}

// Waveforms of the shown recording: one entry per canvas, and what drawing them needs.
let waves = [];
let waveCtx = { span: 1, fraction: 1, pauses: [], scale: 1, colors: null };

function startWaveforms(doc, rel, audioDur, span, signal, cleanups) {
  const box = $('#waveforms');
  waves = [];
  // Measure the drawing width on a placeholder laid out like the real tracks.
  const probe = track('', el('canvas', { class: 'waveform' }));
  box.replaceChildren(probe);
  const cssWidth = probe.querySelector('canvas').clientWidth || 800;
  box.replaceChildren(el('p', { class: 'muted loading', text: 'Loading waveforms…' }));
  const dpr = window.devicePixelRatio || 1;
  const points = Math.max(1, Math.min(4000, Math.round(cssWidth * dpr * Math.min(1, audioDur / span))));

  api(`${rel}/waveform?points=${points}`, signal)
    .then((wf) => {
      if (signal.aborted) return;
      const chans = Array.isArray(wf.channels) ? wf.channels : [];
      const wfDur = wf.duration_seconds > 0 ? wf.duration_seconds : audioDur;
      let peak = 0;
      for (const ch of chans) for (const [lo, hi] of ch.peaks || []) peak = Math.max(peak, Math.abs(lo), Math.abs(hi));
      const css = getComputedStyle(document.documentElement);
      const color = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
      waveCtx = {
        span,
        fraction: Math.min(1, wfDur / span),
        pauses: doc.pauses || [],
        scale: 0.95 / Math.max(peak, 0.1), // quiet calls are drawn larger, silence stays flat
        colors: {
          played: color('--wave-played', '#1f5fbf'),
          unplayed: color('--wave', '#8fb0e0'),
          pause: color('--pause-fill', 'rgba(0,0,0,.08)'),
          pauseSRS: color('--pause-srs-fill', 'rgba(0,0,0,.06)'),
          mid: color('--line', '#d9dee5'),
        },
      };
      box.replaceChildren();
      for (const ch of chans) {
        const info = (doc.channels || []).find((c) => c.index === ch.index);
        const label = info ? channelLabel(doc, info) : ch.label || `channel ${ch.index}`;
        const canvas = el('canvas', { class: 'waveform', 'data-channel': ch.index, title: `${label}: click to seek` });
        box.append(track(label, canvas, 'wave-track'));
        waves.push({ canvas, peaks: Array.isArray(ch.peaks) ? ch.peaks : [] });
      }
      if (!chans.length) box.append(el('p', { class: 'muted', text: 'The audio has no channels to draw.' }));
      const resize = () => {
        const ratio = window.devicePixelRatio || 1;
        for (const w of waves) {
          w.canvas.width = Math.max(1, Math.round(w.canvas.clientWidth * ratio));
          w.canvas.height = Math.max(1, Math.round(w.canvas.clientHeight * ratio));
        }
        const player = $('#player');
        redrawWaves(player ? player.currentTime : 0);
      };
      resize();
      window.addEventListener('resize', resize);
      cleanups.push(() => {
        window.removeEventListener('resize', resize);
        waves = [];
      });
    })
    .catch((err) => {
      if (signal.aborted) return;
      box.replaceChildren(el('p', { class: 'muted', text: `Waveforms unavailable: ${err.message}` }));
      showError(err);
    });
}

function redrawWaves(t) {
  const { span, fraction, pauses, scale, colors } = waveCtx;
  if (!colors) return;
  for (const w of waves) {
    const c = w.canvas;
    const ctx = c.getContext('2d');
    const W = c.width;
    const H = c.height;
    ctx.clearRect(0, 0, W, H);
    for (const p of pauses) {
      ctx.fillStyle = p.by === 'srs' ? colors.pauseSRS : colors.pause;
      const len = p.duration_sec > 0 ? p.duration_sec : p.end ? 0 : span - p.offset_sec;
      ctx.fillRect((p.offset_sec / span) * W, 0, Math.max(1, (len / span) * W), H);
    }
    ctx.fillStyle = colors.mid;
    ctx.fillRect(0, Math.floor(H / 2), W * fraction, 1);
    const n = w.peaks.length;
    const drawW = W * fraction;
    const playedX = (t / span) * W;
    const mid = H / 2;
    for (let i = 0; i < n; i++) {
      const pk = w.peaks[i];
      if (!Array.isArray(pk)) continue;
      const lo = Math.max(-1, Math.min(1, pk[0] * scale));
      const hi = Math.max(-1, Math.min(1, pk[1] * scale));
      const x0 = Math.floor((i / n) * drawW);
      const x1 = Math.max(x0 + 1, Math.floor(((i + 1) / n) * drawW));
      const y0 = mid - hi * mid;
      const y1 = mid - lo * mid;
      ctx.fillStyle = x0 < playedX ? colors.played : colors.unplayed;
      ctx.fillRect(x0, y0, x1 - x0, Math.max(1, y1 - y0));
    }
  }
}

// timelineBlock draws the call across the recording: CTI segments, pauses and events on one time scale with
// the waveforms. onSeek, when given, is called with a time in seconds when a lane is clicked.
function timelineBlock(doc, span, onSeek) {
  const box = el('div', { id: 'timeline' });
  const pct = (sec) => `${(Math.max(0, Math.min(span, sec)) / span) * 100}%`;
  const place = (node, from, to) => {
    node.style.left = pct(from);
    node.style.width = `${((Math.min(span, to) - Math.max(0, from)) / span) * 100}%`;
    return node;
  };

  const segRow = el('div', { class: 'lane segments' });
  const segs = ((doc.call && doc.call.segments) || []).slice()
    .sort((a, b) => new Date(a.start) - new Date(b.start));
  segs.forEach((s, i) => {
    const from = Math.max(0, offsetOf(doc, s.start));
    const to = i + 1 < segs.length ? Math.min(span, offsetOf(doc, segs[i + 1].start)) : span;
    if (to <= from || from >= span) return;
    const names = agentNames(s.agents);
    const tip = [`${s.state || '?'}  ${fmtOffset(from)}–${fmtOffset(to)}`, `since ${fmtTime(s.start)}`];
    if (names) tip.push(`agents: ${names}`);
    if (s.reason) tip.push(`reason: ${s.reason}`);
    // State, then reason, then agents, as far as the block's width allows (the rest is cut with an ellipsis).
    segRow.append(place(el('div', { class: `segment state-${classToken(s.state)}`, title: tip.join('\n') },
      el('span', { class: 'seg-state', text: s.state || '?' }),
      s.reason ? el('span', { class: 'seg-reason', text: ` · ${s.reason}` }) : null,
      names ? el('span', { class: 'seg-agents', text: ` · ${names}` }) : null), from, to));
  });
  if (!segRow.children.length) {
    segRow.append(el('span', { class: 'lane-empty', text: doc.call ? 'no call segments' : 'no CTI call' }));
  }

  const pauseRow = el('div', { class: 'lane pauses' });
  for (const p of doc.pauses || []) {
    const from = p.offset_sec || 0;
    const to = p.duration_sec > 0 ? from + p.duration_sec : p.end ? from : span;
    const tip = `${p.by === 'src' ? 'On hold by the SRC' : p.by === 'srs' ? 'Paused by siphook (SRS)' : `Paused (${p.by || '?'})`}` +
      `  ${fmtOffset(from)}–${fmtOffset(to)} (${fmtOffset(to - from)})`;
    pauseRow.append(place(el('div', { class: `pause by-${classToken(p.by)}`, title: tip }), from, Math.max(to, from)));
  }
  if (!pauseRow.children.length) pauseRow.append(el('span', { class: 'lane-empty', text: 'no pauses' }));

  const eventRow = el('div', { class: 'lane events' });
  for (const e of doc.events || []) {
    const at = offsetOf(doc, e.at);
    const tick = el('div', {
      class: `event type-${classToken(e.type)}`,
      title: `${e.type}  ${fmtOffset(at)} (${fmtTime(e.at)})${e.detail ? `\n${e.detail}` : ''}`,
    });
    tick.style.left = pct(at);
    eventRow.append(tick);
  }
  if (!eventRow.children.length) eventRow.append(el('span', { class: 'lane-empty', text: 'no events' }));

  const axis = el('div', { class: 'lane axis' });
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
  const step = steps.find((s) => span / s <= 10) || 14400;
  for (let t = 0; t <= span + 1e-6; t += step) {
    const lbl = el('span', { class: `axis-label${t >= span - 1e-6 ? ' end' : ''}`, text: fmtDur(t) });
    lbl.style.left = pct(t);
    axis.append(lbl);
  }

  box.append(
    track('Call', segRow, 'lane-track'),
    track('Pauses', pauseRow, 'lane-track'),
    track('Events', eventRow, 'lane-track'),
    track('', axis, 'axis-track'),
    el('div', { class: 'legend' },
      ['ACTIVE', 'HELD', 'ENDED'].map((s) => el('span', {}, el('i', { class: `swatch segment state-${s.toLowerCase()}` }), s)),
      el('span', { title: 'the SRC put every stream on hold (inactive)' }, el('i', { class: 'swatch pause by-src' }), 'on hold by the SRC'),
      el('span', { title: 'siphook paused the recording (not to be recorded, or waiting)' }, el('i', { class: 'swatch pause by-srs' }), 'paused by siphook'),
      el('span', {}, el('i', { class: 'swatch event' }), 'event')),
  );
  if (onSeek) {
    box.addEventListener('click', (ev) => {
      const body = ev.target.closest('.track-body');
      if (!body) return;
      const r = body.getBoundingClientRect();
      onSeek(((ev.clientX - r.left) / r.width) * span);
    });
  } else {
    box.classList.add('static');
  }
  return box;
}

// ---------------------------------------------------------------------------------------------------------
// Live sessions

function liveView() {
  showView('live', 'Live sessions');
  const tbody = $('#sessions tbody');
  const ctl = new AbortController();
  let timer = 0;
  tbody.replaceChildren(el('tr', { class: 'placeholder' }, el('td', { colspan: 7, text: 'Loading…' })));
  $('#live-count').textContent = '';
  $('#live-updated').textContent = '';

  async function refresh() {
    timer = 0;
    if (!document.hidden) {
      try {
        const data = await api('/sessions', ctl.signal);
        renderSessions(tbody, Array.isArray(data.sessions) ? data.sessions : []);
        const d = new Date();
        $('#live-updated').textContent = `updated ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())} · every ${LIVE_REFRESH_MS / 1000} s`;
        showStatus('');
      } catch (err) {
        if (ctl.signal.aborted) return;
        if (!tbody.querySelector('tr.session')) {
          tbody.replaceChildren(el('tr', { class: 'placeholder' }, el('td', {
            colspan: 7,
            text: err.status === 401 ? 'Enter an API token to see the live sessions.' : 'The live sessions could not be loaded.',
          })));
        }
        showError(err);
        if (err.status === 401) return; // resumes when a token is entered
      }
    }
    if (!ctl.signal.aborted) timer = setTimeout(refresh, LIVE_REFRESH_MS);
  }
  refresh();
  return {
    cleanup() {
      ctl.abort();
      if (timer) clearTimeout(timer);
    },
  };
}

function renderSessions(tbody, sessions) {
  $('#live-count').textContent = `${sessions.length} session${sessions.length === 1 ? '' : 's'}`;
  if (!sessions.length) {
    tbody.replaceChildren(el('tr', { class: 'placeholder' }, el('td', { colspan: 7, text: 'No live sessions.' })));
    return;
  }
  const now = Date.now();
  tbody.replaceChildren(...sessions.map((s) => {
    const since = new Date(s.since).getTime();
    const conv = s.conversation_id
      ? el('a', { class: 'mono', href: `#/?${new URLSearchParams({ conversation_id: s.conversation_id })}`, title: s.conversation_id, text: shortID(s.conversation_id) })
      : el('span', { class: 'muted', text: '—' });
    return el('tr', { class: 'session', 'data-id': s.id },
      el('td', {}, badge(s.source, 'source')),
      el('td', {}, badge(s.state, 'state')),
      el('td', { class: 'nowrap', title: fmtTime(s.since), text: Number.isNaN(since) ? '' : fmtAgo((now - since) / 1000) }),
      el('td', { class: 'mono keys' }, uniqueKeys(s.keys).flatMap((k, i) => (i ? [el('br'), keyText(k)] : [keyText(k)]))),
      el('td', {}, conv),
      el('td', { text: agentNames(s.agents) }),
      el('td', { class: s.waiting_reason ? 'reason' : 'muted' },
        s.waiting_reason || (s.matched_by ? `matched by ${s.matched_by}` : '')));
  }));
}

// ---------------------------------------------------------------------------------------------------------
// Start

function onTokenSubmit(ev) {
  ev.preventDefault();
  const token = $('#token-input').value.trim();
  if (!token) return;
  setToken(token);
  $('#token-input').value = '';
  $('#token-form').hidden = true;
  route();
  if (!cookieSafe(token)) showStatus('This token cannot be sent as a cookie, so the audio player cannot use it.', true);
}

function start() {
  const token = getToken();
  if (token) setCookie(token); // the cookie may have gone with the browser session; the audio needs it
  $('#token-clear').hidden = !token;
  $('#token-form').addEventListener('submit', onTokenSubmit);
  $('#token-clear').addEventListener('click', () => {
    setToken('');
    route();
  });
  $('#search').addEventListener('submit', onSearchSubmit);
  $('#search-reset').addEventListener('click', (ev) => {
    if (parseHash().path === '/' && !parseHash().params.toString()) {
      ev.preventDefault(); // already at #/: no hashchange would come
      route();
    }
  });
  window.addEventListener('hashchange', route);
  route();
}

start();
