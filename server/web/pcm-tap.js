// pcm-tap.js - AudioWorklet processor: posts the microphone's mono samples to the page in
// blocks of 2048 frames (a render quantum is only 128). 'flush' posts what is left, then
// 'done', and nothing after it (the recording is over; the context closes soon after).

class PcmTap extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Float32Array(2048);
    this.n = 0;
    this.done = false;
    this.port.onmessage = (e) => {
      if (e.data !== 'flush' || this.done) return;
      if (this.n) this.port.postMessage(this.block.slice(0, this.n));
      this.n = 0;
      this.done = true;
      this.port.postMessage('done');
    };
  }

  process(inputs) {
    if (this.done) return false; // lets the node go
    const ch = inputs[0] && inputs[0][0]; // mono: the node's channelCount is 1
    if (!ch) return true; // no input connected yet
    let i = 0;
    while (i < ch.length) {
      const take = Math.min(ch.length - i, this.block.length - this.n);
      this.block.set(ch.subarray(i, i + take), this.n);
      this.n += take;
      i += take;
      if (this.n === this.block.length) {
        this.port.postMessage(this.block);
        this.block = new Float32Array(2048);
        this.n = 0;
      }
    }
    return true;
  }
}

registerProcessor('pcm-tap', PcmTap);
