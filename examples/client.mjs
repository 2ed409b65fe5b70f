#!/usr/bin/env node
// A client for the audioclass HTTP API, Node.js without dependencies (node:http only).
//
//   node examples/client.mjs classify examples/dog.ogg --model envnet-esc50 --top-k 3
//   node examples/client.mjs models
//   node examples/client.mjs filters m5-speech m5.svg
//
// The server is $AUDIOCLASS_URL (default http://localhost:8080); --url overrides it. With
// $AUDIOCLASS_API_KEY set, it is sent as `Authorization: Bearer KEY`. Exits 1 with the
// server's error message when a request fails.
import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";

function fail(msg) {
  console.error(msg);
  process.exit(1);
}

// One HTTP request; resolves to the response body (a Buffer), or exits with the error.
function request(base, path, params = {}, body = null, contentType = null) {
  const url = new URL(path, base);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) url.searchParams.set(k, v);
  const headers = {};
  if (contentType) headers["Content-Type"] = contentType;
  if (body) headers["Content-Length"] = body.length;
  if (process.env.AUDIOCLASS_API_KEY) headers.Authorization = `Bearer ${process.env.AUDIOCLASS_API_KEY}`;
  const lib = url.protocol === "https:" ? https : http;
  return new Promise((resolve) => {
    const req = lib.request(url, { method: body ? "POST" : "GET", headers, timeout: 600000 }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const data = Buffer.concat(chunks);
        if (res.statusCode === 200) return resolve(data);
        try {
          const e = JSON.parse(data).error;
          fail(`${path}: HTTP ${res.statusCode} ${e.code}: ${e.message}`);
        } catch {
          fail(`${path}: HTTP ${res.statusCode}`);
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", (e) => fail(`cannot reach ${base}: ${e.message} (is \`make run\` running?)`));
    if (body) req.write(body);
    req.end();
  });
}

// --name value options after the positional arguments.
function parse(argv) {
  const pos = [], opt = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith("--")) opt[argv[i].slice(2)] = argv[++i];
    else pos.push(argv[i]);
  }
  return { pos, opt };
}

const { pos, opt } = parse(process.argv.slice(2));
const base = opt.url || process.env.AUDIOCLASS_URL || "http://localhost:8080";
const [command, ...rest] = pos;

if (command === "classify" && rest.length === 1) {
  // The file is sent as it is: the server reads WAV, FLAC, Ogg, MP3, WebM, M4A ... itself.
  const audio = readFileSync(rest[0]);
  const r = JSON.parse(await request(base, "/classify", { model: opt.model, top_k: opt["top-k"] || 3 }, audio,
                                     "application/octet-stream"));
  console.log(`${rest[0]}: ${r.label} (${r.score.toFixed(3)})  [${r.model}, ${r.format}, ${r.duration_s} s, ${r.windows} windows]`);
  for (const p of r.predictions) console.log(`  ${p.score.toFixed(3)}  ${p.label}`);
} else if (command === "models" && rest.length === 0) {
  for (const m of JSON.parse(await request(base, "/models")).models)
    console.log(`${m.name}: ${m.arch}, ${m.n_labels} labels, ${m.sample_rate} Hz, ${m.window_s} s windows, ` +
                `${m.parameters.toLocaleString("en")} parameters`);
} else if (command === "filters" && rest.length === 2) {
  const svg = await request(base, "/filters", { model: rest[0], layer: opt.layer, mode: opt.mode, format: "svg" });
  writeFileSync(rest[1], svg);
  console.log(`wrote ${rest[1]} (${svg.length.toLocaleString("en")} bytes)`);
} else {
  fail("usage: node examples/client.mjs classify FILE [--model NAME] [--top-k K]\n" +
       "       node examples/client.mjs models\n" +
       "       node examples/client.mjs filters MODEL OUT.svg [--layer L] [--mode kernel|probe]\n" +
       "       (--url URL or $AUDIOCLASS_URL, default http://localhost:8080)");
}
