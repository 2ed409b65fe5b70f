// live.js - Live mode's connection: microphone chunks go to GET /stream over a WebSocket as
// binary PCM, the server's JSON messages come back through callbacks. No DOM here.

// s16le rather than f32le: half the bytes on the wire (96 kB/s at 48 kHz instead of 192 kB/s,
// which matters on a phone's uplink), and the same 16-bit samples the Record button puts in
// its WAV, so Live and Record classify the same numbers; a microphone has no more than 16
// useful bits anyway.
const FORMAT = 's16le';
const BYTES_PER_SAMPLE = 2;
// Audio may wait for the network this long (queued before the socket opens, or in the
// socket's own buffer) before Live gives up: the results would lag ever further behind.
const BACKLOG_S = 10;

const CLOSE_NAMES = {
  1000: 'normal closure',
  1001: 'server shutting down',
  1003: 'unsupported data',
  1006: 'connection lost',
  1008: 'policy violation',
  1009: 'message too large',
  1011: 'server error',
};

export function closeName(code) {
  return CLOSE_NAMES[code] || 'closed';
}

// The query of GET /stream: the model, the microphone's own rate (the server resamples, with
// its state kept across messages), the encoding of the binary messages and, when the page
// has one, the API key (a browser's WebSocket sends no Authorization header; the server takes
// ?api_key= on /stream for that, and keeps queries out of its log).
export function streamQuery(model, rate, topK, key) {
  const q = new URLSearchParams({ model, rate: String(rate), format: FORMAT, top_k: String(topK) });
  if (key) q.set('api_key', key);
  return q;
}

export function streamUrl(query) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/stream?${query}`;
}

// Float samples in [-1, 1] as little-endian 16-bit integers (DataView: whatever the CPU's
// own byte order), rounded as wav.js rounds them.
export function toS16le(samples) {
  const buf = new ArrayBuffer(BYTES_PER_SAMPLE * samples.length);
  const v = new DataView(buf);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    v.setInt16(2 * i, Math.round(s * 32767), true);
  }
  return buf;
}

// One stream. onMessage(msg) gets every JSON message ("start", "result", "event", "summary",
// "error"); onClose({code, reason, error, opened, ended}) is called once, when the socket is
// closed: error is the server's {code, message} (or Live's own, for a backlog) when there was
// one, opened says whether the handshake succeeded, ended whether end() had been called.
export class LiveStream {
  constructor(url, rate, { onMessage, onClose }) {
    this.queue = []; // messages sent before the socket opened
    this.queued = 0;
    this.limit = BACKLOG_S * rate * BYTES_PER_SAMPLE;
    this.samples = 0; // sent (or queued) so far
    this.rate = rate;
    this.opened = this.ended = this.closed = false;
    this.error = null;
    this.ws = new WebSocket(url);
    this.ws.binaryType = 'arraybuffer';
    this.ws.onopen = () => {
      this.opened = true;
      for (const m of this.queue) this.ws.send(m);
      this.queue = [];
      this.queued = 0;
    };
    this.ws.onmessage = (e) => {
      if (typeof e.data !== 'string') return; // the protocol has no binary answers
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      if (msg.type === 'error' && msg.error) this.error = msg.error;
      onMessage(msg);
    };
    // 'error' carries nothing a page may read; the 'close' that always follows has the code.
    this.ws.onclose = (e) => {
      this.closed = true;
      this.queue = [];
      onClose({ code: e.code, reason: e.reason, error: this.error, opened: this.opened, ended: this.ended });
    };
  }

  get seconds() { return this.samples / this.rate; }

  // A chunk of the microphone (Float32Array at the stream's rate), as one binary message.
  send(chunk) {
    if (this.ended || this.closed) return;
    this.samples += chunk.length;
    this.post(toS16le(chunk));
  }

  // Asks for the summary: the server answers with it, then closes normally.
  end() {
    if (this.ended || this.closed) return;
    this.post(JSON.stringify({ type: 'end' }));
    this.ended = true;
  }

  // Closes without a summary (the page is leaving Live before the server said anything).
  abort() {
    if (!this.closed) this.ws.close(1000);
  }

  post(m) {
    if (this.ws.readyState === WebSocket.CONNECTING) {
      this.queue.push(m);
      this.queued += typeof m === 'string' ? m.length : m.byteLength;
    } else if (this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(m);
    }
    if (this.queued + this.ws.bufferedAmount > this.limit && !this.error) {
      this.error = { code: 'backlog', message: `more than ${BACKLOG_S} s of audio are waiting for the ` +
        'network: the connection is too slow for the microphone' };
      this.ws.close(1000);
    }
  }
}
