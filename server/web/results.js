// results.js - draws a /classify answer: top-k bars, duration and timings, and for audio
// longer than one window a timeline of the per-window labels with the events found in it.
import { el, clear, labelHue, fmtMs, fmtPct } from './dom.js';

// Labels such as _silence_ and _unknown_ are the models' "nothing here" classes: no event.
const isBackground = (label) => label.startsWith('_');

export function bars(predictions) {
  const list = el('ol', { class: 'bars', 'aria-label': 'Predictions, most likely first' });
  for (const p of predictions) {
    const fill = el('span', { class: 'fill' });
    fill.style.width = `${Math.max(0.5, 100 * p.score)}%`;
    fill.style.setProperty('--hue', labelHue(p.label));
    list.append(el('li', {},
      el('span', { class: 'bar-label' }, p.label),
      el('span', { class: 'bar', 'aria-hidden': 'true' }, fill),
      el('span', { class: 'bar-score' }, fmtPct(p.score))));
  }
  return list;
}

function facts(r) {
  const t = r.timing_ms || {};
  const dl = el('dl', { class: 'facts' });
  const add = (k, v) => dl.append(el('dt', {}, k), el('dd', {}, v));
  add('duration', `${r.duration_s.toFixed(2)} s`);
  add('source', `${r.format}${r.encoding ? ` ${r.encoding}` : ''}, ${r.sample_rate} Hz, ${r.channels} ch`);
  add('windows', String(r.windows));
  add('decode', fmtMs(t.decode || 0));
  add('queue', fmtMs(t.queue || 0));
  add('inference', fmtMs(t.inference || 0));
  add('total (server)', fmtMs(t.total || 0));
  return dl;
}

// Where each window shows on the timeline: from the midpoint with its neighbour before to the
// one after, so that overlapping windows tile the clip [0, duration] without gaps.
function cells(segments, duration) {
  const centres = segments.map((s) => (s.start_s + s.end_s) / 2);
  return segments.map((s, i) => ({
    ...s,
    a: i === 0 ? 0 : Math.max(0, (centres[i - 1] + centres[i]) / 2),
    b: i === segments.length - 1 ? duration : Math.min(duration, (centres[i] + centres[i + 1]) / 2),
  }));
}

// Runs of consecutive windows with the same foreground label, over their cells' extent.
export function events(segments, duration) {
  const out = [];
  let prev = null;
  for (const c of cells(segments, duration)) {
    const last = out[out.length - 1];
    if (!isBackground(c.label)) {
      if (last && prev && prev.label === c.label) {
        last.end = c.b;
        last.score = Math.max(last.score, c.score);
      } else {
        out.push({ label: c.label, start: c.a, end: c.b, score: c.score });
      }
    }
    prev = c;
  }
  return out;
}

// One cell per window, showing the window's top label.
function timeline(segments, duration) {
  const strip = el('div', { class: 'timeline', role: 'img',
    'aria-label': `Top label of each of ${segments.length} windows; the table below lists them` });
  for (const c of cells(segments, duration)) {
    const cell = el('span', { class: `cell${isBackground(c.label) ? ' background' : ''}`,
      title: `${c.start_s.toFixed(2)}–${c.end_s.toFixed(2)} s: ${c.label} ${fmtPct(c.score)}` }, c.label);
    cell.style.left = `${(100 * c.a) / duration}%`;
    cell.style.width = `${(100 * Math.max(0, c.b - c.a)) / duration}%`;
    cell.style.setProperty('--hue', labelHue(c.label));
    strip.append(cell);
  }
  const axis = el('div', { class: 'axis', 'aria-hidden': 'true' },
    el('span', {}, '0 s'), el('span', {}, `${duration.toFixed(1)} s`));
  return el('div', { class: 'timeline-wrap' }, strip, axis);
}

function windowTable(segments) {
  const body = el('tbody');
  for (const s of segments)
    body.append(el('tr', {}, el('td', {}, s.start_s.toFixed(2)), el('td', {}, s.end_s.toFixed(2)),
      el('td', {}, s.label), el('td', {}, fmtPct(s.score))));
  return el('details', {}, el('summary', {}, `All ${segments.length} windows`),
    el('table', { class: 'data' },
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'start (s)'), el('th', { scope: 'col' }, 'end (s)'),
        el('th', { scope: 'col' }, 'label'), el('th', { scope: 'col' }, 'score'))), body));
}

// r: the /classify JSON; source: what was classified ("yes.wav", "recording"); windowS: the
// model's window in seconds (a timeline is drawn when the clip is longer).
export function renderResult(container, r, { source, windowS }) {
  clear(container);
  container.append(
    el('p', { class: 'verdict' }, el('span', { class: 'muted' }, `${source} → `),
      el('strong', { id: 'result-label', 'data-label': r.label }, r.label),
      ` ${fmtPct(r.score)}`, el('span', { class: 'muted' }, ` (${r.model})`)),
    bars(r.predictions), facts(r));
  const segs = r.segments || [];
  if (segs.length > 1 && r.duration_s > windowS) {
    const ev = events(segs, r.duration_s);
    const evList = el('ul', { class: 'events', id: 'events' });
    for (const e of ev)
      evList.append(el('li', {}, el('strong', {}, e.label), ` ${e.start.toFixed(2)}–${e.end.toFixed(2)} s (up to ${fmtPct(e.score)})`));
    if (!ev.length) evList.append(el('li', {}, 'none: every window is background'));
    container.append(el('h3', {}, 'Timeline'), timeline(segs, r.duration_s),
      el('h3', {}, 'Events'),
      el('p', { class: 'hint' }, 'Runs of consecutive windows with the same top label (labels in _underscores_ are background), over the stretch the timeline gives those windows.'),
      evList, windowTable(segs));
  }
}

export function renderError(container, err, source) {
  clear(container);
  const status = err.status ? `HTTP ${err.status}, ${err.code}` : err.code;
  container.append(el('div', { class: 'error', role: 'alert' },
    el('p', {}, el('strong', {}, `The server refused ${source}`), ` (${status}):`),
    el('p', { id: 'error-message' }, err.message),
    err.requestId ? el('p', { class: 'muted' }, `request id ${err.requestId}`) : null));
}

export function renderBusy(container, text) {
  clear(container);
  container.append(el('p', { class: 'placeholder' }, text));
}
