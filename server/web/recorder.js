// recorder.js - the microphone as a source of mono float chunks (getUserMedia + an
// AudioWorklet). Consumers subscribe to chunks: the clip recorder below keeps them and encodes
// a WAV for POST /classify; Live mode (live.js) sends them to GET /stream as they come.

// Raw input for the model: the browser's voice processing would change what it hears.
const CONSTRAINTS = {
  audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
};

export function microphoneAvailable() {
  return !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.AudioWorkletNode);
}

// What a failed Microphone.start() means, in a sentence for the page.
export function microphoneError(e) {
  if (e && e.name === 'NotAllowedError')
    return 'The microphone was denied: allow it for this page (the browser asks, or its address bar has the setting) and try again.';
  if (e && e.name === 'NotFoundError') return 'This device has no microphone.';
  return `No microphone: ${e && e.message ? e.message : e}`;
}

export class Microphone {
  constructor() {
    this.consumers = new Set();
    this.ctx = null;
    this.stream = null;
    this.tap = null;
    this.flushed = null;
  }

  get sampleRate() { return this.ctx ? this.ctx.sampleRate : 0; }

  // fn(Float32Array chunk, sampleRate) for every block captured; returns an unsubscribe.
  subscribe(fn) {
    this.consumers.add(fn);
    return () => this.consumers.delete(fn);
  }

  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia(CONSTRAINTS);
    try {
      this.ctx = new AudioContext();
      await this.ctx.audioWorklet.addModule('/ui/pcm-tap.js');
      const source = this.ctx.createMediaStreamSource(this.stream);
      // channelCount 1, explicit: Web Audio downmixes a stereo microphone before the tap.
      this.tap = new AudioWorkletNode(this.ctx, 'pcm-tap',
        { numberOfInputs: 1, numberOfOutputs: 1, channelCount: 1, channelCountMode: 'explicit' });
      const rate = this.ctx.sampleRate;
      this.tap.port.onmessage = (e) => {
        if (e.data === 'done') this.flushed && this.flushed();
        else if (this.tap) for (const fn of this.consumers) fn(e.data, rate); // none once released
      };
      // The graph is pulled from the destination: route the tap there through a muted gain
      // so that it runs without playing the microphone back.
      const mute = this.ctx.createGain();
      mute.gain.value = 0;
      source.connect(this.tap).connect(mute).connect(this.ctx.destination);
      await this.ctx.resume();
    } catch (e) {
      this.release();
      throw e;
    }
  }

  // Delivers the last partial block to the consumers, then releases the device.
  async stop() {
    if (this.tap) {
      const done = new Promise((resolve) => { this.flushed = resolve; });
      this.tap.port.postMessage('flush');
      await done;
    }
    this.release();
  }

  release() {
    if (this.stream) for (const t of this.stream.getTracks()) t.stop();
    if (this.ctx) this.ctx.close();
    this.stream = this.ctx = this.tap = this.flushed = null;
  }
}

// Keeps every chunk of a recording, up to maxSeconds; samples() joins them.
export class ClipBuffer {
  constructor(maxSeconds) {
    this.maxSeconds = maxSeconds;
    this.chunks = [];
    this.frames = 0;
    this.rate = 0;
    this.peak = 0; // of the last chunk, for a level meter
  }

  push(chunk, rate) {
    this.rate = rate;
    const room = Math.floor(this.maxSeconds * rate) - this.frames;
    if (room <= 0) return;
    const c = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(c);
    this.frames += c.length;
    let p = 0;
    for (let i = 0; i < c.length; i++) p = Math.max(p, Math.abs(c[i]));
    this.peak = p;
  }

  get seconds() { return this.rate ? this.frames / this.rate : 0; }
  get full() { return this.rate > 0 && this.frames >= Math.floor(this.maxSeconds * this.rate); }

  samples() {
    const out = new Float32Array(this.frames);
    let off = 0;
    for (const c of this.chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}
