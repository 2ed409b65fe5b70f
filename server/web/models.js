// models.js - the model chooser and its card: GET /models for the list and card summary,
// GET /models/NAME for the labels and layers.
import { apiJson } from './api.js';
import { el, clear } from './dom.js';

export async function listModels() {
  return (await apiJson('/models')).models;
}

export async function modelDetail(name) {
  return apiJson(`/models/${encodeURIComponent(name)}`);
}

// The card as the file has it: rows only for what its metadata holds, nothing made up.
export function renderCard(dl, summary, detail) {
  clear(dl);
  const card = summary.card || {};
  const add = (k, v) => dl.append(el('dt', {}, k), el('dd', {}, v));
  add('Task', card.task || card.description || '—');
  if (card.data) add('Data', card.data);
  if (card.license) add('Licence', card.license);
  add('Accuracy', card.accuracy || 'not recorded in the model file (see its model card)');
  add('Network', `${summary.arch}, ${summary.parameters.toLocaleString('en')} parameters, ` +
    `${summary.sample_rate} Hz, ${Number(summary.window_s.toFixed(2))} s windows`);
  // a long list scrolls in its box; tabindex lets a keyboard scroll it too
  const labels = el('ul', { class: 'chips', tabindex: 0, 'aria-label': `${detail.labels.length} labels` });
  for (const l of detail.labels) labels.append(el('li', {}, l));
  add(`Labels (${detail.labels.length})`, labels);
  if (card.training)
    add('Training', el('details', {}, el('summary', {}, 'command line'), el('code', { class: 'training' }, card.training)));
}

// Conv layers of the model, for the filters view.
export function convLayers(detail) {
  return (detail.layers || []).filter((l) => l.name && l.op.startsWith('conv')).map((l) => l.name);
}
