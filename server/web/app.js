// app.js - the page's entry point: wires the key form, the model chooser, file and
// microphone input, the result view and the filters view to each other.
import { ApiError, apiKey, setApiKey, classify } from './api.js';
import { listModels, modelDetail, renderCard, convLayers } from './models.js';
import { renderResult, renderError, renderBusy } from './results.js';
import { Microphone, ClipBuffer, microphoneAvailable } from './recorder.js';
import { encodeWav16 } from './wav.js';
import { showFilters } from './filters.js';
import { el, clear } from './dom.js';

const MAX_RECORD_S = 30; // a recording stops by itself here

const $ = (id) => document.getElementById(id);
const state = { models: [], model: null, detail: null };

function say(id, text, isError = false) {
  const p = $(id);
  p.textContent = text;
  p.classList.toggle('bad', isError);
}

// A 401 anywhere means the key is missing or wrong: say so at the key field.
function needKey(err) {
  if (!(err instanceof ApiError) || err.status !== 401) return false;
  say('key-status', apiKey() ? 'The server did not accept this key.' : 'This server needs an API key.', true);
  $('api-key').focus();
  return true;
}

// ---------------------------------------------------------------- models
async function loadModels() {
  const sel = $('model');
  sel.disabled = true;
  try {
    state.models = await listModels();
  } catch (e) {
    clear(sel).append(el('option', {}, 'unavailable'));
    if (!needKey(e)) say('model-status', `Cannot list the models: ${e.message}`, true);
    return;
  }
  if (apiKey()) say('key-status', 'Key accepted.');
  say('model-status', '');
  clear(sel);
  for (const m of state.models) sel.append(el('option', { value: m.name }, m.name));
  sel.disabled = state.models.length === 0;
  if (!state.models.length) say('model-status', 'The server hosts no model.', true);
  else await chooseModel(state.models[0].name);
}

async function chooseModel(name) {
  const summary = state.models.find((m) => m.name === name);
  try {
    const detail = await modelDetail(name);
    state.model = summary;
    state.detail = detail;
  } catch (e) {
    if (!needKey(e)) say('model-status', `Cannot read ${name}: ${e.message}`, true);
    return;
  }
  renderCard($('card'), summary, state.detail);
  const layers = convLayers(state.detail);
  const sel = $('f-layer');
  clear(sel);
  for (const l of layers) sel.append(el('option', { value: l }, l));
  $('f-mode').value = 'kernel';
  clear($('filters'));
}

// ---------------------------------------------------------------- classify
async function classifyBlob(blob, source) {
  if (!state.model) {
    renderBusy($('result'), 'Choose a model first.');
    return;
  }
  const out = $('result');
  out.setAttribute('aria-busy', 'true');
  renderBusy(out, `Classifying ${source}…`);
  try {
    const r = await classify(state.model.name, blob, Number($('top-k').value));
    renderResult(out, r, { source, windowS: state.model.window_s });
  } catch (e) {
    needKey(e);
    renderError(out, e instanceof ApiError ? e : new ApiError(0, 'error', e.message), source);
  } finally {
    out.setAttribute('aria-busy', 'false');
  }
}

function setupFileInput() {
  const input = $('file');
  const drop = $('drop');
  input.addEventListener('change', () => {
    const f = input.files && input.files[0];
    if (f) classifyBlob(f, f.name);
    input.value = ''; // choosing the same file again classifies it again
  });
  // A file dropped beside the zone would make the browser leave the page to open it.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    e.stopPropagation();
    drop.classList.remove('over');
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (f) classifyBlob(f, f.name);
  });
}

// ---------------------------------------------------------------- microphone
function setupRecorder() {
  const start = $('rec-start');
  const stop = $('rec-stop');
  const time = $('rec-time');
  const level = $('rec-level');
  const audio = $('rec-audio');
  if (!microphoneAvailable()) {
    start.disabled = true;
    say('rec-status', 'This browser gives this page no microphone: it needs https, or http://localhost.');
    return;
  }
  let mic = null;
  let clip = null;
  let audioUrl = null;

  const show = () => {
    const s = clip ? clip.seconds : 0;
    time.textContent = `${s.toFixed(1)} s`;
    time.dataset.seconds = s.toFixed(2);
    level.style.width = `${Math.round(100 * (clip ? clip.peak : 0))}%`;
  };

  const finish = async () => {
    if (!mic) return;
    stop.disabled = true;
    const m = mic;
    mic = null;
    await m.stop();
    start.disabled = false;
    show();
    level.style.width = '0%';
    if (!clip.frames) {
      say('rec-status', 'Nothing was recorded.', true);
      return;
    }
    const wav = encodeWav16(clip.samples(), clip.rate);
    if (audioUrl) URL.revokeObjectURL(audioUrl);
    audioUrl = URL.createObjectURL(wav);
    audio.src = audioUrl;
    audio.hidden = false;
    say('rec-status', `Recorded ${clip.seconds.toFixed(1)} s at ${clip.rate} Hz.`);
    await classifyBlob(wav, 'the recording');
  };

  start.addEventListener('click', async () => {
    start.disabled = true;
    clip = new ClipBuffer(MAX_RECORD_S);
    show();
    mic = new Microphone();
    mic.subscribe((chunk, rate) => {
      clip.push(chunk, rate);
      show();
      if (clip.full) finish();
    });
    try {
      await mic.start();
    } catch (e) {
      mic = null;
      start.disabled = false;
      say('rec-status', `No microphone: ${e.message}`, true);
      return;
    }
    stop.disabled = false;
    stop.focus();
    say('rec-status', `Recording (at most ${MAX_RECORD_S} s)…`);
  });
  stop.addEventListener('click', finish);
}

// ---------------------------------------------------------------- filters
function setupFilters() {
  $('filters-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!state.model) return;
    const out = $('filters');
    out.setAttribute('aria-busy', 'true');
    renderBusy(out, 'Computing the frequency responses…');
    try {
      await showFilters(out, state.model.name, $('f-layer').value, $('f-mode').value);
    } catch (err) {
      needKey(err);
      clear(out).append(el('div', { class: 'error', role: 'alert' },
        el('p', { id: 'filters-error' }, err.message)));
    } finally {
      out.setAttribute('aria-busy', 'false');
    }
  });
  // The kernel mode reads the taps, which only the first layer applies to the waveform.
  $('f-layer').addEventListener('change', () => {
    $('f-mode').value = $('f-layer').selectedIndex === 0 ? 'kernel' : 'probe';
  });
}

// ---------------------------------------------------------------- key
function setupKey() {
  const input = $('api-key');
  input.value = apiKey();
  $('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    setApiKey(input.value.trim());
    say('key-status', 'Checking…');
    loadModels();
  });
  $('key-forget').addEventListener('click', () => {
    setApiKey('');
    input.value = '';
    say('key-status', 'Key forgotten.');
  });
}

$('model').addEventListener('change', (e) => chooseModel(e.target.value));
setupKey();
setupFileInput();
setupRecorder();
setupFilters();
loadModels().then(() => document.body.setAttribute('data-ready', '1'));
