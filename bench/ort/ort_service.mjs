// ort_service.mjs - what a user would build instead of audioclass with ONNX Runtime: a
// Node HTTP service around onnxruntime-node, for bench/server.sh. Same job as audioclass
// and bench/pytorch_service.py: POST /classify?model=NAME with a WAV body -> downmix,
// resample to the model's rate (libsamplerate, sinc), the test-time windows of the model
// file's policy, one ONNX Runtime run over all windows of the request, probabilities
// averaged, top 5 as JSON.
//
//   node bench/ort/ort_service.mjs PORT THREADS NAME=MODEL.onnx:MODEL.safetensors ...
//
// The .safetensors file is read for its metadata only (labels, sample_rate, input_shape,
// policy, graph's last op); the .onnx file is its export (bench/compare_onnx.py).
import fs from 'node:fs';
import http from 'node:http';
import ort from 'onnxruntime-node';
import wavefile from 'wavefile';
import libsamplerate from '@alexanderolsen/libsamplerate-js';

const { create, ConverterType } = libsamplerate;

const [portS, threadsS, ...specs] = process.argv.slice(2);
if (!portS || !threadsS || !specs.length) {
  console.error('usage: node ort_service.mjs PORT THREADS NAME=MODEL.onnx:MODEL.safetensors ...');
  process.exit(2);
}

function metadata(path) { // the safetensors header's __metadata__
  const fd = fs.openSync(path, 'r');
  const len = Buffer.alloc(8);
  fs.readSync(fd, len, 0, 8, 0);
  const n = Number(len.readBigUInt64LE());
  const head = Buffer.alloc(n);
  fs.readSync(fd, head, 0, n, 8);
  fs.closeSync(fd);
  return JSON.parse(head.toString('utf8')).__metadata__;
}

const models = {};
for (const spec of specs) {
  const [name, files] = spec.split('=');
  const [onnxPath, stPath] = files.split(':');
  const md = metadata(stPath);
  const graph = JSON.parse(md.graph);
  const last = graph.nodes ? graph.nodes.find((n) => n.id === graph.output).op : graph[graph.length - 1].op;
  models[name] = {
    session: await ort.InferenceSession.create(onnxPath, {
      intraOpNumThreads: Number(threadsS), interOpNumThreads: 1, graphOptimizationLevel: 'all',
    }),
    labels: JSON.parse(md.labels), rate: Number(md.sample_rate), shape: JSON.parse(md.input_shape),
    policy: JSON.parse(md.policy), last,
  };
}

// The policy's windows (models/FORMAT.md; export.py policy_windows): [n, window]
function windows(clip, { window: w, hop, pad }) {
  const length = clip.length + 2 * pad;
  const padded = new Float32Array(length);
  padded.set(clip, pad);
  if (length <= w) {
    const out = new Float32Array(w);
    out.set(padded, Math.floor((w - length) / 2));
    return [out, 1];
  }
  const n = Math.ceil((length - w) / hop) + 1;
  const out = new Float32Array(n * w);
  for (let i = 0; i < n; i++) {
    const s = Math.floor((i * (length - w)) / (n - 1) + 0.5);
    out.set(padded.subarray(s, s + w), i * w);
  }
  return [out, n];
}

const converters = new Map();

async function decode(body, rate) {
  const wav = new wavefile.WaveFile(body);
  const fmt = wav.fmt;
  let ch = wav.getSamples(false, Float32Array);
  if (!Array.isArray(ch)) ch = [ch];
  const scale = fmt.audioFormat === 3 ? 1 : 2 ** (fmt.bitsPerSample - 1);
  const mono = new Float32Array(ch[0].length);
  for (const c of ch) for (let i = 0; i < mono.length; i++) mono[i] += c[i] / scale / ch.length;
  if (fmt.sampleRate === rate) return mono;
  // one converter per rate pair, made once (instantiating it costs some 20 ms); simple() is
  // synchronous, so requests never share one at the same time
  const key = `${fmt.sampleRate}>${rate}`;
  if (!converters.has(key))
    converters.set(key, await create(1, fmt.sampleRate, rate, { converterType: ConverterType.SRC_SINC_MEDIUM_QUALITY }));
  return converters.get(key).simple(mono);
}

async function classify(m, body) {
  const clip = await decode(body, m.rate);
  const [x, n] = windows(clip, m.policy);
  const input = new ort.Tensor('float32', x, [n, ...m.shape]);
  const out = await m.session.run({ [m.session.inputNames[0]]: input });
  const y = out[m.session.outputNames[0]].data, k = m.labels.length;
  const probs = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    const row = y.subarray(i * k, (i + 1) * k);
    if (m.last === 'softmax') for (let j = 0; j < k; j++) probs[j] += row[j] / n;
    else if (m.last === 'log_softmax') for (let j = 0; j < k; j++) probs[j] += Math.exp(row[j]) / n;
    else {
      let mx = -Infinity, sum = 0;
      for (let j = 0; j < k; j++) mx = Math.max(mx, row[j]);
      const e = new Float64Array(k);
      for (let j = 0; j < k; j++) sum += (e[j] = Math.exp(row[j] - mx));
      for (let j = 0; j < k; j++) probs[j] += e[j] / sum / n;
    }
  }
  const top = [...probs.keys()].sort((a, b) => probs[b] - probs[a]).slice(0, 5);
  return { label: m.labels[top[0]], predictions: top.map((j) => ({ label: m.labels[j], score: probs[j] })),
    duration_s: clip.length / m.rate };
}

http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const url = new URL(req.url, 'http://x');
    const reply = (status, obj) => {
      const data = JSON.stringify(obj);
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) });
      res.end(data);
    };
    const name = url.searchParams.get('model') || Object.keys(models)[0];
    if (req.method !== 'POST' || url.pathname !== '/classify') return reply(404, { error: 'not found' });
    if (!models[name]) return reply(404, { error: 'unknown model' });
    try {
      const t0 = process.hrtime.bigint();
      const r = await classify(models[name], Buffer.concat(chunks));
      reply(200, { model: name, ...r, timing_ms: { total: Number(process.hrtime.bigint() - t0) / 1e6 } });
    } catch (e) { // a bad upload must not kill the service
      reply(400, { error: String(e.message || e) });
    }
  });
}).listen(Number(portS), '127.0.0.1', () => console.log(`serving ${Object.keys(models).join(', ')} on :${portS}`));
