// app.js - the page's entry point: wires the key form, the model chooser, file and
// microphone input, Live mode, the result view and the filters view to each other.
import { ApiError, apiKey, setApiKey, classify, streamRefusal } from './api.js';
import { listModels, modelDetail, renderCard, convLayers } from './models.js';
import { renderResult, renderError, renderBusy } from './results.js';
import { Microphone, ClipBuffer, microphoneAvailable, microphoneError } from './recorder.js';
import { LiveStream, streamQuery, streamUrl, closeName } from './live.js';
import { renderLiveWaiting, renderLiveStart, renderLiveResult, addLiveEvent, renderNoEvents,
  renderLiveSummary, renderLiveError } from './liveview.js';
import { encodeWav16 } from './wav.js';
import { showFilters } from './filters.js';
import { el, clear } from './dom.js';

const MAX_RECORD_S = 30; // a recording stops by itself here

const $ = (id) => document.getElementById(id);
const state = { models: [], model: null, detail: null, live: null /* { stop() } while Live runs */ };

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
    $('live-start').disabled = true;
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
    $('live-start').disabled = false;
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
    $('live-start').disabled = true; // one user of the microphone at a time
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
      $('live-start').disabled = false;
      say('rec-status', microphoneError(e), true);
      return;
    }
    stop.disabled = false;
    stop.focus();
    say('rec-status', `Recording (at most ${MAX_RECORD_S} s)…`);
  });
  stop.addEventListener('click', finish);
}

// ---------------------------------------------------------------- live
// Start: the microphone first (its AudioContext's rate goes in the URL; a denied microphone
// opens no connection), then the WebSocket; chunks captured before it opens wait in
// LiveStream's queue. Stop: the last partial chunk, then {"type":"end"}; the server answers
// with the summary and closes. Any other close ends Live with the code and the reason.
function setupLive() {
  const start = $('live-start');
  const stop = $('live-stop');
  const time = $('live-time');
  const now = $('live-now');
  const events = $('live-events');
  const end = $('live-end');
  if (!microphoneAvailable()) return; // setupRecorder says why and disables both

  const show = (s) => {
    const t = s && s.stream ? s.stream.seconds : 0;
    time.textContent = `${t.toFixed(1)} s`;
    time.dataset.seconds = t.toFixed(2);
  };
  const idle = () => {
    state.live = null;
    const focus = document.activeElement === stop || document.activeElement === document.body;
    start.disabled = false;
    stop.disabled = true;
    $('rec-start').disabled = false;
    if (focus) start.focus(); // Stop, now off, had it
  };

  // Why the WebSocket never opened, from the same request as a plain GET (api.js).
  async function refused(s) {
    const e = await streamRefusal(s.query);
    let text;
    if (e.status === 401)
      text = `${e.message}. This server wants an API key: enter the right one above.`;
    else if (e.status === 403) text = e.message;
    else if (e.status === 426) text = 'The server refused the stream (it may be shutting down, or serving ' +
      'as many streams as it takes).';
    else text = e.message;
    const why = e.status && e.status !== 426 ? ` (HTTP ${e.status}, ${e.code})` : '';
    renderLiveError(end, `Cannot stream to ${s.model}${why}`, text);
    say('live-status', `Live did not start: ${text}`, true);
  }

  async function closed(s, c) {
    if (!s.stopping) s.mic.release(); // a stop in progress releases it after the flush
    show(s);
    if (c.error && c.error.code === 'backlog') {
      renderLiveError(end, 'Live stopped', c.error.message);
      say('live-status', 'Live stopped: the network is too slow.', true);
    } else if (c.error) { // the server's "error" message came before the close
      renderLiveError(end, `The stream stopped: close code ${c.code} (${closeName(c.code)})`,
        `${c.error.code}: ${c.error.message}`);
      say('live-status', `Live stopped with an error (close code ${c.code}).`, true);
    } else if (s.summary) {
      renderNoEvents(events);
      say('live-status', `Stopped: ${s.summary.duration_s.toFixed(1)} s streamed, ` +
        `${s.summary.events.length} event${s.summary.events.length === 1 ? '' : 's'}.`);
    } else if (!c.opened && !s.cancelled) {
      await refused(s);
    } else if (s.cancelled) {
      say('live-status', 'Stopped.');
    } else { // closed without an error message (a limit libwslay enforces, a lost connection)
      renderLiveError(end, `The stream stopped: close code ${c.code} (${closeName(c.code)})`,
        `The connection closed before the summary${c.reason ? `, saying "${c.reason}"` : ''}.`);
      say('live-status', `Live stopped (close code ${c.code}).`, true);
    }
    idle();
    s.resolve();
  }

  function message(s, m) {
    if (m.type === 'start') {
      renderLiveStart(now, m);
      say('live-status', `Live: ${m.model} hears the microphone.`);
    } else if (m.type === 'result') {
      renderLiveResult(now, m);
    } else if (m.type === 'event') {
      addLiveEvent(events, m);
    } else if (m.type === 'summary') {
      s.summary = m;
      renderLiveSummary(end, m);
    }
  }

  // Stops the session: with a summary once it is connected, without one before.
  async function stopLive(s) {
    if (s.stopping) return s.done;
    s.stopping = true;
    stop.disabled = true;
    if (!s.stream) {
      s.cancelled = true; // the microphone is still starting: begin() ends it
      return s.done;
    }
    say('live-status', 'Stopping: waiting for the summary…');
    await s.mic.stop(); // its last partial chunk goes out before the end
    s.stream.end();
    return s.done;
  }

  async function begin() {
    if (!state.model) {
      say('live-status', 'Choose a model first.', true);
      return;
    }
    start.disabled = true;
    $('rec-start').disabled = true; // one user of the microphone at a time
    const s = { model: state.model.name, mic: new Microphone(), stream: null, summary: null };
    s.done = new Promise((resolve) => { s.resolve = resolve; });
    state.live = { stop: () => stopLive(s) };
    clear(events);
    clear(end);
    show(null);
    renderLiveWaiting(now, 'Starting the microphone…');
    say('live-status', 'Starting the microphone…');
    try {
      await s.mic.start();
    } catch (e) {
      s.mic.release();
      renderLiveWaiting(now, 'Press Start live to stream the microphone.');
      say('live-status', microphoneError(e), true);
      idle();
      s.resolve();
      return;
    }
    if (s.cancelled) {
      s.mic.release();
      say('live-status', 'Stopped.');
      idle();
      s.resolve();
      return;
    }
    const rate = s.mic.sampleRate;
    s.query = streamQuery(s.model, rate, Number($('top-k').value), apiKey());
    s.stream = new LiveStream(streamUrl(s.query), rate,
      { onMessage: (m) => message(s, m), onClose: (c) => closed(s, c) });
    s.mic.subscribe((chunk) => {
      s.stream.send(chunk);
      show(s);
    });
    renderLiveWaiting(now, `Connecting to ${s.model}…`);
    say('live-status', `Connecting to ${s.model}…`);
    stop.disabled = false;
    stop.focus();
  }

  start.addEventListener('click', begin);
  stop.addEventListener('click', () => state.live && state.live.stop());
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

// A stream belongs to one model: switching stops it first (with its summary).
$('model').addEventListener('change', async (e) => {
  const name = e.target.value;
  if (state.live) {
    await state.live.stop();
    say('live-status', `Live stopped: the model changed to ${name}. Start live streams to it.`);
  }
  await chooseModel(name);
});
setupKey();
setupFileInput();
setupRecorder();
setupLive();
setupFilters();
loadModels().then(() => document.body.setAttribute('data-ready', '1'));
