// test_browser.mjs CONFIG.json - the web page in Debian's chromium (headless, playwright-core):
// every label the page shows is compared with the API's own answer for the same bytes.
// Prints one "ok   - ..." or "FAIL - ..." line per check (test_browser.sh counts them).
// Waits are for DOM states, never for a time: the timeouts only bound a hung run.
import { chromium } from 'playwright-core';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const TIMEOUT = 120000 * (cfg.slow || 1);
let failed = 0;
const ok = (d) => console.log(`ok   - ${d}`);
const bad = (d) => { failed++; console.log(`FAIL - ${d}`); };
const check = (d, cond, detail = '') => (cond ? ok(d) : bad(detail ? `${d} (${detail})` : d));
const eq = (d, want, got) => check(d, want === got, `expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
// A check that throws (a wait that timed out, a missing element) is one failed check.
async function step(name, fn) {
  try {
    await fn();
  } catch (e) {
    bad(`${name}: ${String(e.message || e).split('\n')[0]}`);
  }
}

// The API's answer for a file, the reference for what the page shows.
async function apiClassify(base, file, model, headers = {}) {
  const res = await fetch(`${base}/classify?model=${model}&top_k=5&windows=1`, {
    method: 'POST', body: readFileSync(file), headers: { 'Content-Type': 'application/octet-stream', ...headers },
  });
  return { status: res.status, body: await res.json() };
}
async function apiJson(base, path) {
  return (await fetch(base + path)).json();
}

// 16-bit mono WAV of float samples (for the fake microphone, which plays WAV files only).
function wav16(samples, rate) {
  const b = Buffer.alloc(44 + 2 * samples.length);
  b.write('RIFF', 0); b.writeUInt32LE(36 + 2 * samples.length, 4); b.write('WAVEfmt ', 8);
  b.writeUInt32LE(16, 16); b.writeUInt16LE(1, 20); b.writeUInt16LE(1, 22); b.writeUInt32LE(rate, 24);
  b.writeUInt32LE(2 * rate, 28); b.writeUInt16LE(2, 32); b.writeUInt16LE(16, 34); b.write('data', 36);
  b.writeUInt32LE(2 * samples.length, 40);
  samples.forEach((s, i) => b.writeInt16LE(Math.round(Math.max(-1, Math.min(1, s)) * 32767), 44 + 2 * i));
  return b;
}

// A fresh profile each launch; the fake microphone plays `micFile` (looped) to the page.
async function launch(micFile) {
  const profile = mkdtempSync(join(cfg.tmp, 'profile-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      `--use-file-for-fake-audio-capture=${micFile}`],
    viewport: { width: 1100, height: 900 },
    permissions: ['microphone'],
  });
  ctx.setDefaultTimeout(TIMEOUT);
  return { ctx, close: async () => { await ctx.close(); rmSync(profile, { recursive: true, force: true }); } };
}

// Opens the page, recording every request, CSP violation and script error it causes.
async function openPage(ctx, url) {
  const page = await ctx.newPage();
  const log = { requests: [], errors: [], csp: [] };
  page.on('request', (r) => log.requests.push(r.url()));
  page.on('pageerror', (e) => log.errors.push(e.message));
  await page.exposeFunction('__cspViolation', (v) => log.csp.push(v));
  await page.addInitScript(() => document.addEventListener('securitypolicyviolation',
    (e) => window.__cspViolation(`${e.violatedDirective} ${e.blockedURI}`)));
  const res = await page.goto(url);
  return { page, log, res };
}

async function setFile(page, file) {
  await page.setInputFiles('#file', file);
}

// The label the page shows once the result for `source` is in.
async function resultLabel(page, source) {
  const v = page.locator('.verdict', { hasText: source });
  await v.waitFor();
  return page.locator('#result-label').getAttribute('data-label');
}

// Live mode: Start live with the keyboard; resolves once the page streams (Stop has the
// focus), or at once with streaming = false (a stream that fails may be over before a look).
async function startLive(page, streaming = true) {
  await page.focus('#live-start');
  await page.keyboard.press('Enter');
  if (streaming) await page.waitForFunction(() => document.activeElement.id === 'live-stop');
}

// The Live error box once it is shown: [title, message].
async function liveError(page) {
  await page.locator('#live-error').waitFor();
  await page.waitForFunction(() => !document.getElementById('live-start').disabled);
  return [await page.locator('#live-error-title').innerText(), await page.locator('#live-error').innerText()];
}

async function record(page, seconds) {
  await page.focus('#rec-start');
  await page.keyboard.press('Enter'); // keyboard, as a user without a mouse would
  await page.waitForFunction((s) => Number(document.getElementById('rec-time').dataset.seconds) >= s, seconds);
  await page.waitForFunction(() => document.activeElement.id === 'rec-stop');
  ok('the Stop button has the focus while recording');
  await page.keyboard.press('Enter');
  return resultLabel(page, 'the recording');
}

const M5 = 'm5-speech';
const tone = join(cfg.tmp, 'tone200.wav');
const long = join(cfg.tmp, 'long.wav');
const garbage = join(cfg.tmp, 'garbage.bin');

// ============================================================ main page, fake mic = the tone
const b1 = await launch(tone);
const { page, log, res } = await openPage(b1.ctx, cfg.url + '/');
const origin = new URL(cfg.url).origin;

await step('page and model chooser', async () => {
  const csp = res.headers()['content-security-policy'] || '';
  check('page: CSP header with script-src \'self\'', csp.includes("script-src 'self'") && !csp.includes('unsafe'), csp);
  await page.waitForSelector('body[data-ready="1"]');
  const models = (await apiJson(cfg.url, '/models')).models;
  const options = await page.locator('#model option').evaluateAll((os) => os.map((o) => o.value));
  eq('chooser lists the models of GET /models', JSON.stringify(models.map((m) => m.name)), JSON.stringify(options));
  await page.selectOption('#model', M5);
  const m5 = models.find((m) => m.name === M5);
  const detail = await apiJson(cfg.url, `/models/${M5}`);
  await page.locator('#card dd', { hasText: m5.card.description }).first().waitFor();
  ok('card shows the task from the model file');
  check('card shows the licence', (await page.locator('#card').innerText()).includes(m5.card.license));
  eq('card lists every label', detail.labels.length, await page.locator('#card .chips li').count());
  check('card says the accuracy is not in the file (none is made up)',
    (await page.locator('#card').innerText()).includes('not recorded in the model file'));
  // a file whose metadata has the whole card: each row shows the file's own text
  const carded = models.find((m) => m.name === 'm5-carded');
  await page.selectOption('#model', 'm5-carded');
  await page.locator('#card dd', { hasText: carded.card.accuracy }).waitFor();
  const rows = await page.locator('#card').evaluate((dl) => Object.fromEntries(
    [...dl.querySelectorAll('dt')].map((dt) => [dt.textContent, dt.nextElementSibling.textContent])));
  eq('card: task from the file', carded.card.task, rows.Task);
  eq('card: data from the file', carded.card.data, rows.Data);
  eq('card: accuracy from the file', carded.card.accuracy, rows.Accuracy);
  await page.selectOption('#model', M5);
  await page.locator('#card dd', { hasText: m5.card.description }).first().waitFor();
});

await step('classify a file (picker)', async () => {
  const want = await apiClassify(cfg.url, tone, M5);
  await setFile(page, tone);
  eq('tone: the page shows the API\'s label', want.body.label, await resultLabel(page, 'tone200.wav'));
  const shown = await page.locator('.bars .bar-label').allInnerTexts();
  eq('tone: the top-5 bars in the API\'s order', JSON.stringify(want.body.predictions.map((p) => p.label)), JSON.stringify(shown));
  check('tone: duration and timings shown', /duration\s*2\.00 s/.test(await page.locator('.facts').innerText()) &&
    (await page.locator('.facts').innerText()).includes('inference'));
  eq('results are announced (aria-live)', 'polite', await page.getAttribute('#result', 'aria-live'));
  await page.screenshot({ path: join(cfg.artifacts, 'page-result.png'), fullPage: true });
});

await step('drop a long file: timeline', async () => {
  const want = await apiClassify(cfg.url, long, M5);
  const bytes = [...readFileSync(long)];
  const dt = await page.evaluateHandle((b) => {
    const d = new DataTransfer();
    d.items.add(new File([new Uint8Array(b)], 'long.wav', { type: 'audio/wav' }));
    return d;
  }, bytes);
  await page.dispatchEvent('#drop', 'drop', { dataTransfer: dt });
  eq('long: the page shows the API\'s label', want.body.label, await resultLabel(page, 'long.wav'));
  eq('long: one timeline cell per window', want.body.segments.length, await page.locator('.timeline .cell').count());
  const cells = await page.locator('.timeline .cell').allInnerTexts();
  eq('long: each cell is its window\'s label', JSON.stringify(want.body.segments.map((s) => s.label)), JSON.stringify(cells));
  check('long: an events list', await page.locator('#events li').count() > 0);
});

await step('a file the server refuses', async () => {
  const want = await apiClassify(cfg.url, garbage, M5);
  check('garbage: the API refuses it', want.status >= 400 && want.status < 500, String(want.status));
  await setFile(page, garbage);
  await page.locator('#error-message').waitFor();
  eq('garbage: the page shows the server\'s message', want.body.error.message, await page.locator('#error-message').innerText());
  check('garbage: shown as an alert', await page.locator('.error[role=alert]').count() === 1);
});

if (cfg.yes) {
  await step('a real Speech Commands clip', async () => {
    const want = await apiClassify(cfg.url, cfg.yes, M5);
    await setFile(page, cfg.yes);
    eq('real clip: the page shows the API\'s label', want.body.label, await resultLabel(page, 'yes.flac'));
  });
}

await step('record from the (fake) microphone', async () => {
  const want = await apiClassify(cfg.url, tone, M5);
  eq('microphone (a 200 Hz tone): the page shows the API\'s label for the file', want.body.label, await record(page, 2.0));
  check('the recording can be played back', await page.evaluate(() => {
    const a = document.getElementById('rec-audio');
    return !a.hidden && a.src.startsWith('blob:');
  }));
});

await step('filters view', async () => {
  const j = await apiJson(cfg.url, `/filters?model=${M5}&layer=conv1&mode=kernel&format=json`);
  await page.selectOption('#f-layer', 'conv1');
  await page.selectOption('#f-mode', 'kernel');
  await page.click('#filters-form button[type=submit]');
  await page.waitForFunction(() => {
    const img = document.getElementById('filters-img');
    return img && img.complete && img.naturalWidth > 0;
  });
  ok('filters: the SVG picture is drawn');
  eq('filters: one table row per filter', j.filters.length, await page.locator('#filters-table tbody tr').count());
  const first = await page.locator('#filters-table tbody tr').first().locator('td').allInnerTexts();
  eq('filters: rows in the API\'s order', String(j.filters[0].index), first[0]);
  check('filters: one sentence says what it means', (await page.locator('#filters-explain').innerText()).includes('mel scale'));
  await page.screenshot({ path: join(cfg.artifacts, 'page-filters.png'), fullPage: true });
  // kernel mode on a deep layer: the server's 400, shown as it is
  const err = await (await fetch(`${cfg.url}/filters?model=${M5}&layer=conv2&mode=kernel&format=json`)).json();
  await page.selectOption('#f-layer', 'conv2');
  eq('filters: a deep layer switches to probe mode', 'probe', await page.inputValue('#f-mode'));
  await page.selectOption('#f-mode', 'kernel');
  await page.click('#filters-form button[type=submit]');
  await page.locator('#filters-error').waitFor();
  eq('filters: the server\'s refusal is shown', err.error.message, await page.locator('#filters-error').innerText());
  await page.selectOption('#f-mode', 'probe');
  await page.click('#filters-form button[type=submit]');
  await page.locator('#filters-table').waitFor();
  const jp = await apiJson(cfg.url, `/filters?model=${M5}&layer=conv2&mode=probe&format=json`);
  eq('filters: probe mode on conv2', jp.filters.length, await page.locator('#filters-table tbody tr').count());
});

await step('accessibility, dark mode, phone width', async () => {
  const unlabelled = await page.locator('input, select, button').evaluateAll((els) => els
    .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
    .map((e) => e.id || e.outerHTML));
  eq('every control has a label', '[]', JSON.stringify(unlabelled));
  await page.emulateMedia({ colorScheme: 'dark' });
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await page.screenshot({ path: join(cfg.artifacts, 'page-dark.png'), fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });
  const bgLight = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  check('dark mode changes the colours', bg !== bgLight, `${bg} vs ${bgLight}`);
  await page.setViewportSize({ width: 375, height: 800 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  check('phone width (375 px): nothing wider than the screen', overflow <= 0, `${overflow} px too wide`);
  await page.screenshot({ path: join(cfg.artifacts, 'page-phone.png'), fullPage: true });
  await page.setViewportSize({ width: 1100, height: 900 });
});

const outside = log.requests.filter((u) => !u.startsWith(origin + '/') && !u.startsWith('blob:') && !u.startsWith('data:'));
eq('no request leaves the server', '[]', JSON.stringify(outside));
check('the page asked for its scripts and styles', log.requests.some((u) => u.endsWith('/ui/app.js')) &&
  log.requests.some((u) => u.endsWith('/ui/app.css')));
eq('no CSP violation', '[]', JSON.stringify(log.csp));
eq('no script error', '[]', JSON.stringify(log.errors));

// ============================================================ API key
await step('API key', async () => {
  const { page: kp, log: klog } = await openPage(b1.ctx, cfg.keyUrl + '/');
  await kp.locator('#key-status', { hasText: 'needs an API key' }).waitFor();
  ok('key: the page asks for a key when the server answers 401');
  check('key: the key field has the focus', await kp.evaluate(() => document.activeElement.id === 'api-key'));
  await kp.fill('#api-key', cfg.key);
  await kp.keyboard.press('Enter');
  await kp.waitForFunction(() => !document.getElementById('model').disabled);
  ok('key: models listed once the key is given');
  const want = await apiClassify(cfg.keyUrl, tone, M5, { Authorization: `Bearer ${cfg.key}` });
  await setFile(kp, tone);
  eq('key: classify works with the key', want.body.label, await resultLabel(kp, 'tone200.wav'));
  eq('key: kept in sessionStorage', cfg.key, await kp.evaluate(() => sessionStorage.getItem('audioclass.apiKey')));
  const sent = [];
  kp.on('request', (r) => { if (r.url().endsWith('/models')) sent.push(r.headers().authorization || ''); });
  await kp.reload();
  await kp.waitForFunction(() => !document.getElementById('model').disabled);
  eq('key: sent as Authorization: Bearer after a reload', `Bearer ${cfg.key}`, sent[0]);
  // a browser's WebSocket sends no header: the page puts the key in /stream's query
  await startLive(kp);
  ok('key: Live streams with the key (?api_key=)');
  await kp.keyboard.press('Enter'); // Stop live (it has the focus)
  await kp.locator('#live-summary').waitFor();
  ok('key: ... and ends with its summary');
  await kp.evaluate(() => sessionStorage.setItem('audioclass.apiKey', 'wrong-key'));
  await startLive(kp, false);
  const [title, msg] = await liveError(kp);
  check('key: with a wrong key, Live shows the server\'s refusal (HTTP 401) instead of hanging', title.includes('HTTP 401'), title);
  check('key: ... and says a key is wanted', msg.includes('wants an API key'), msg);
  eq('key: no CSP violation', '[]', JSON.stringify(klog.csp));
  await kp.close();
});
// ============================================================ Live: a close with an error code
await step('Live: the server closes the stream with an error', async () => {
  // --max-stream-message-bytes 64: the page's first chunk (2048 samples) is too large
  const { page: tp, log: tlog } = await openPage(b1.ctx, cfg.tightUrl + '/');
  await tp.waitForSelector('body[data-ready="1"]');
  await startLive(tp, false);
  const [title, msg] = await liveError(tp);
  check('live 1009: the close code and its meaning are shown', title.includes('close code 1009 (message too large)'), title);
  check('live 1009: says the stream ended before its summary', msg.includes('before the summary'), msg);
  check('live 1009: shown as an alert', await tp.locator('#live-end .error[role=alert]').count() === 1);
  check('live 1009: Stop is off again', await tp.isDisabled('#live-stop'));
  check('live 1009: Record is on again', !(await tp.isDisabled('#rec-start')));
  eq('live 1009: no script error', '[]', JSON.stringify(tlog.errors));
  eq('live 1009: no CSP violation', '[]', JSON.stringify(tlog.csp));
  await tp.close();
});
await b1.close();

// ============================================================ Live: the microphone denied
await step('Live: the microphone denied', async () => {
  // no --use-fake-ui-for-media-stream and no permission: getUserMedia is refused
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--use-fake-device-for-media-stream'] });
  try {
    const ctx = await browser.newContext();
    ctx.setDefaultTimeout(TIMEOUT);
    const { page: dp, log: dlog } = await openPage(ctx, cfg.url + '/');
    await dp.waitForSelector('body[data-ready="1"]');
    await startLive(dp, false);
    await dp.locator('#live-status.bad', { hasText: 'microphone was denied' }).waitFor();
    ok('live, microphone denied: the page says so');
    await dp.waitForFunction(() => !document.getElementById('live-start').disabled);
    ok('live, microphone denied: Start live is on again');
    eq('live, microphone denied: no script error', '[]', JSON.stringify(dlog.errors));
  } finally {
    await browser.close();
  }
});

// ============================================================ fake mic = a real "yes"
if (cfg.yesF32) {
  const f = readFileSync(cfg.yesF32);
  const samples = new Float32Array(f.buffer, f.byteOffset, f.length / 4);
  const yesWav = join(cfg.tmp, 'yes16k.wav');
  writeFileSync(yesWav, wav16(samples, 16000));
  const b2 = await launch(yesWav);
  await step('record a real "yes" through the fake microphone', async () => {
    const { page: yp } = await openPage(b2.ctx, cfg.url + '/');
    await yp.waitForSelector('body[data-ready="1"]');
    await yp.selectOption('#model', M5);
    await yp.locator('#card .chips li').first().waitFor();
    const want = await apiClassify(cfg.url, yesWav, M5);
    eq('microphone (a real "yes", looped): the page shows the API\'s label for the file', want.body.label, await record(yp, 2.0));
  });
  await step('Live: a real "yes" streamed through the fake microphone', async () => {
    const { page: lp, log: llog } = await openPage(b2.ctx, cfg.url + '/');
    await lp.waitForSelector('body[data-ready="1"]');
    await lp.selectOption('#model', M5);
    await lp.locator('#card .chips li').first().waitFor();
    eq('live: the events list is announced (aria-live)', 'polite', await lp.getAttribute('#live-events', 'aria-live'));
    await startLive(lp);
    ok('live: the Stop button has the focus while streaming');
    check('live: Record is off while Live runs', await lp.isDisabled('#rec-start'));
    await lp.locator('#live-label').waitFor();
    ok('live: results arrive while streaming');
    check('live: the latest result shows its predictions', await lp.locator('#live-now .bars li').count() > 0);
    await lp.locator('#live-events li[data-label="yes"]').first().waitFor();
    ok('live: an event "yes" appears while streaming');
    await lp.screenshot({ path: join(cfg.artifacts, 'page-live.png'), fullPage: true });
    await lp.click('#live-stop');
    await lp.locator('#live-summary').waitFor();
    const samples = Number(await lp.getAttribute('#live-summary', 'data-samples'));
    check('live: the summary counts the samples streamed', samples > 0, String(samples));
    const labels = await lp.locator('#live-events li').evaluateAll((lis) => lis.map((li) => li.dataset.label));
    check('live: the event list has "yes"', labels.includes('yes'), JSON.stringify(labels));
    const facts = await lp.locator('#live-summary').evaluate((dl) => Object.fromEntries(
      [...dl.querySelectorAll('dt')].map((dt) => [dt.textContent, dt.nextElementSibling.textContent])));
    eq('live: the summary counts the events the list shows', String(labels.length), facts.events);
    await lp.waitForFunction(() => !document.getElementById('live-start').disabled);
    ok('live: Start live is on again after the summary');
    // switching model while live: the stream stops (with its summary) before the switch
    await startLive(lp);
    await lp.locator('#live-label').waitFor();
    await lp.selectOption('#model', 'envnet-esc50');
    await lp.locator('#live-status', { hasText: 'the model changed' }).waitFor();
    ok('live: a change of model stops the stream');
    check('live: ... with its summary', await lp.locator('#live-summary').count() === 1);
    check('live: ... and Start live is on again', !(await lp.isDisabled('#live-start')));
    eq('live: no script error', '[]', JSON.stringify(llog.errors));
    eq('live: no CSP violation', '[]', JSON.stringify(llog.csp));
    await lp.close();
  });
  await b2.close();
} else {
  console.log('skip - real "yes" through the microphone: no Speech Commands data');
}

process.exit(failed ? 1 : 0);
