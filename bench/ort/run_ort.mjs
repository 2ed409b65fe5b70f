// run_ort.mjs - ONNX Runtime (onnxruntime-node, CPU) on one exported model: the same
// measurement as `audioclass bench` (items/s, batch latency p50/p99), for bench/compare_onnx.py.
//   node bench/ort/run_ort.mjs MODEL.onnx BATCH THREADS SECONDS INPUT_SHAPE_JSON [--dump X.f32]
// Prints one JSON line. The input is seeded noise in [-1, 1); with --dump, the batch is read
// from X.f32 instead and the raw output is printed (the parity check), nothing is timed.
import fs from 'node:fs';
import ort from 'onnxruntime-node';

const [file, batchS, threadsS, secondsS, shapeS, flag, dumpFile] = process.argv.slice(2);
const batch = Number(batchS), threads = Number(threadsS), seconds = Number(secondsS);
const item = JSON.parse(shapeS); // [1, L] or [1, 1, L]
const session = await ort.InferenceSession.create(file, {
  intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
  graphOptimizationLevel: 'all',
});
const numel = item.reduce((a, b) => a * b, 1) * batch;
const data = new Float32Array(numel);
let s = 1;
for (let i = 0; i < numel; i++) { s = (s * 1103515245 + 12345) >>> 0; data[i] = ((s >>> 16) & 0x7fff) / 16384 - 1; }
if (flag === '--dump') {
  const b = fs.readFileSync(dumpFile);
  data.set(new Float32Array(b.buffer, b.byteOffset, numel));
}
const x = new ort.Tensor('float32', data, [batch, ...item]);
const feeds = { [session.inputNames[0]]: x };
if (flag === '--dump') {
  const out = await session.run(feeds);
  console.log(JSON.stringify({ output: Array.from(out[session.outputNames[0]].data) }));
  process.exit(0);
}
for (let i = 0; i < 3; i++) await session.run(feeds); // warm-up
const times = [];
const t0 = process.hrtime.bigint();
while (Number(process.hrtime.bigint() - t0) / 1e9 < seconds) {
  const a = process.hrtime.bigint();
  await session.run(feeds);
  times.push(Number(process.hrtime.bigint() - a) / 1e6);
}
const total = Number(process.hrtime.bigint() - t0) / 1e9;
times.sort((p, q) => p - q);
const q = (f) => times[Math.min(times.length - 1, Math.floor(f * times.length))];
console.log(JSON.stringify({ runtime: 'onnxruntime', version: ort.env.versions.common, batch, threads,
  items_per_s: Math.round(times.length * batch / total), p50_ms: +q(0.5).toFixed(4), p99_ms: +q(0.99).toFixed(4) }));
