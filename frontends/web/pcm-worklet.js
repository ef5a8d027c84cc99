// AudioWorklet: microphone samples (float32, the context's rate) → ~100 ms s16le chunks + a level.
class PcmCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.chunk = Math.round(sampleRate / 10); // samples per message (100 ms)
    this.buf = new Int16Array(this.chunk);
    this.n = 0;
    this.peak = 0;
  }

  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (!ch) return true;
    for (let i = 0; i < ch.length; i++) {
      const x = Math.max(-1, Math.min(1, ch[i]));
      this.peak = Math.max(this.peak, Math.abs(x));
      this.buf[this.n++] = x < 0 ? x * 0x8000 : x * 0x7fff;
      if (this.n === this.chunk) {
        this.port.postMessage({ pcm: this.buf.buffer, level: this.peak }, [this.buf.buffer]);
        this.buf = new Int16Array(this.chunk);
        this.n = 0;
        this.peak = 0;
      }
    }
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);
