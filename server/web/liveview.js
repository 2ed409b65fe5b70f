// liveview.js - draws Live mode: the latest result, the events as they arrive, the summary,
// and what stopped a stream (the WebSocket close code and the server's message).
import { el, clear, fmtPct } from './dom.js';
import { bars } from './results.js';

const MAX_EVENTS_SHOWN = 200; // a long session keeps the newest

const secs = (s) => `${s.toFixed(2)} s`;
const span = (m) => `${m.t_start_s.toFixed(2)}–${secs(m.t_end_s)}`;

export function renderLiveWaiting(now, text) {
  clear(now).append(el('p', { class: 'placeholder' }, text));
}

// The "start" message: what the stream will do.
export function renderLiveStart(now, m) {
  renderLiveWaiting(now, `Listening: ${m.model} (${m.mode} mode) gives a result every ${secs(m.hop_s)} ` +
    `over ${secs(m.window_s)} windows; an event is a label above ${fmtPct(m.threshold)} for ` +
    `${m.min_hops} results in a row.`);
}

// A "result" message: the latest label, replacing the one before.
export function renderLiveResult(now, m) {
  clear(now).append(
    el('p', { class: 'verdict' },
      el('strong', { id: 'live-label', 'data-label': m.label }, m.label), ` ${fmtPct(m.score)}`,
      el('span', { class: 'muted' }, ` (${span(m)})`)),
    bars(m.predictions));
}

// An "event" message: one more line in the list (an aria-live region).
export function addLiveEvent(list, m) {
  for (const n of list.querySelectorAll('.none')) n.remove();
  list.append(el('li', { 'data-label': m.label }, el('strong', {}, m.label),
    ` ${span(m)}, ${fmtPct(m.score)}`));
  while (list.children.length > MAX_EVENTS_SHOWN) list.firstElementChild.remove();
}

export function renderNoEvents(list) {
  if (!list.children.length) list.append(el('li', { class: 'none' }, 'none: nothing but background'));
}

// The "summary" message, after the client's {"type":"end"}.
export function renderLiveSummary(box, s) {
  const dl = el('dl', { class: 'facts', id: 'live-summary', 'data-samples': s.samples });
  const add = (k, v) => dl.append(el('dt', {}, k), el('dd', {}, v));
  add('model', s.model);
  add('duration', secs(s.duration_s));
  add('samples', s.samples.toLocaleString('en'));
  add('results', String(s.results));
  add('events', String(s.events.length));
  if (s.partial_bytes_dropped) add('bytes dropped', String(s.partial_bytes_dropped));
  clear(box).append(el('h3', {}, 'Summary'), dl);
}

export function renderLiveError(box, title, message) {
  clear(box).append(el('div', { class: 'error', role: 'alert' },
    el('p', {}, el('strong', { id: 'live-error-title' }, title)),
    el('p', { id: 'live-error' }, message)));
}
