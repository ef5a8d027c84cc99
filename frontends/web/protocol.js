// The /v1/live WebSocket protocol (docs/protocol.md): JSON control messages, binary media messages.

export const KIND = { frame: 1, audio: 2 };
export const FRAME_FORMAT = { jpeg: 1, png: 2, webp: 3, rgb: 4 };
export const AUDIO_FORMAT = { s16le: 1, f32le: 2 };
const HEADER_BYTES = 24;

// A binary media message: the 24-byte little-endian header, then the payload.
export function mediaMessage(kind, format, seq, tS, a, b, payload) {
  const body = new Uint8Array(payload);
  const buf = new ArrayBuffer(HEADER_BYTES + body.byteLength);
  const v = new DataView(buf);
  v.setUint8(0, 1); // version
  v.setUint8(1, kind);
  v.setUint8(2, format);
  v.setUint8(3, tS == null ? 0 : 1); // flags: t_s set
  v.setUint32(4, seq, true);
  v.setFloat64(8, tS == null ? 0 : tS, true);
  v.setUint32(16, a, true); // frame: width (rgb) | audio: sample rate
  v.setUint32(20, b, true); // frame: height (rgb) | audio: channels
  new Uint8Array(buf, HEADER_BYTES).set(body);
  return buf;
}

// One live connection: numbered messages out, typed events in.
export class LiveClient extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.seq = 0;
    this.ws = null;
  }

  open(setup) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      let ready = false;
      ws.onopen = () => this.send({ type: "setup", ...setup });
      ws.onerror = () => { if (!ready) reject(new Error("cannot connect to " + this.url.split("?")[0])); };
      ws.onclose = (ev) => {
        if (!ready) reject(new Error(`connection refused (${ev.code}${ev.reason ? " " + ev.reason : ""})`));
        this.dispatchEvent(new CustomEvent("close", { detail: { code: ev.code, reason: ev.reason } }));
      };
      ws.onmessage = (ev) => {
        const msg = JSON.parse(ev.data);
        if (msg.type === "ready") { ready = true; resolve(msg); }
        if (msg.type === "error" && msg.fatal && !ready) reject(new Error(`${msg.code}: ${msg.message}`));
        this.dispatchEvent(new CustomEvent(msg.type, { detail: msg }));
      };
    });
  }

  get open_() { return this.ws && this.ws.readyState === WebSocket.OPEN; }
  get buffered() { return this.ws ? this.ws.bufferedAmount : 0; }

  nextSeq() { return this.seq++; }

  send(msg) {
    if (!this.open_) return false;
    this.ws.send(JSON.stringify({ seq: this.nextSeq(), ...msg }));
    return true;
  }

  sendFrame(jpegBuffer, tS) {
    if (!this.open_) return false;
    this.ws.send(mediaMessage(KIND.frame, FRAME_FORMAT.jpeg, this.nextSeq(), tS, 0, 0, jpegBuffer));
    return true;
  }

  sendAudio(s16Buffer, sampleRate, tS) {
    if (!this.open_) return false;
    this.ws.send(mediaMessage(KIND.audio, AUDIO_FORMAT.s16le, this.nextSeq(), tS, sampleRate, 1, s16Buffer));
    return true;
  }

  close() {
    if (this.open_) this.send({ type: "close" });
  }
}
