// add_metadata.mjs IN OUT KEY=VALUE... - copies a safetensors model file with more
// __metadata__ entries (e.g. a model card's task, data and accuracy) for the tests.
import { readFileSync, writeFileSync } from 'node:fs';

const [input, output, ...pairs] = process.argv.slice(2);
const buf = readFileSync(input);
const n = Number(buf.readBigUInt64LE(0));
const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
header.__metadata__ = header.__metadata__ || {};
for (const p of pairs) {
  const i = p.indexOf('=');
  header.__metadata__[p.slice(0, i)] = p.slice(i + 1);
}
let text = JSON.stringify(header);
while (Buffer.byteLength(text) % 8) text += ' '; // keep the data 8-byte aligned
const len = Buffer.alloc(8);
len.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
writeFileSync(output, Buffer.concat([len, Buffer.from(text, 'utf8'), buf.subarray(8 + n)]));
