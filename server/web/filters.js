// filters.js - GET /filters for a model and layer: the SVG picture (fetched with the key and
// shown from a blob: URL) and the per-filter table from the JSON form.
import { api, apiJson } from './api.js';
import { el, clear, fmtHz } from './dom.js';

let lastUrl = null;

function explain(j) {
  const s = j.summary || {};
  const live = (s.filters || 0) - (s.dead || 0);
  let text = `Each of the ${live} live filters of ${j.layer} passes one band of frequencies: the ` +
    `table gives where its response peaks (centre), the band within 3 dB of that peak, and ` +
    `the peak gain, sorted by centre frequency`;
  if (typeof s.mel_correlation === 'number' && typeof s.linear_correlation === 'number') {
    const mel = s.mel_correlation > s.linear_correlation;
    text += `; the centres follow a mel scale (r = ${s.mel_correlation.toFixed(2)}) ` +
      `${mel ? 'better' : 'no better'} than a linear one (r = ${s.linear_correlation.toFixed(2)})` +
      `${mel ? ', crowding the low frequencies as the ear does' : ''}`;
  }
  return `${text}.`;
}

function table(j) {
  const body = el('tbody');
  for (const f of j.filters)
    body.append(el('tr', { class: f.dead ? 'dead' : undefined },
      el('td', {}, String(f.index)),
      el('td', {}, f.dead ? 'dead' : fmtHz(f.centre_hz)),
      el('td', {}, f.dead ? '—' : `${fmtHz(f.low_hz)} – ${fmtHz(f.high_hz)}`),
      el('td', {}, f.dead ? '—' : f.peak_db.toFixed(1))));
  return el('div', { class: 'table-scroll' }, el('table', { class: 'data', id: 'filters-table' },
    el('caption', {}, `Filters of ${j.layer} (${j.mode} mode), by centre frequency`),
    el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'filter'), el('th', { scope: 'col' }, 'centre'),
      el('th', { scope: 'col' }, 'band (−3 dB)'), el('th', { scope: 'col' }, 'peak gain (dB)'))),
    body));
}

// Throws ApiError (e.g. kernel mode on a layer that does not see the waveform: 400).
export async function showFilters(container, model, layer, mode) {
  const q = new URLSearchParams({ model, layer, mode });
  const [svg, j] = await Promise.all([
    api(`/filters?${q}&format=svg`).then((r) => r.blob()),
    apiJson(`/filters?${q}&format=json`),
  ]);
  if (lastUrl) URL.revokeObjectURL(lastUrl);
  lastUrl = URL.createObjectURL(svg);
  clear(container);
  container.append(
    el('p', { class: 'explain', id: 'filters-explain' }, explain(j)),
    el('img', { id: 'filters-img', class: 'filters-img', src: lastUrl,
      alt: `Frequency responses of the filters of ${j.layer} (${j.mode} mode); the table below gives each one's figures` }),
    table(j));
}
