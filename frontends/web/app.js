// The browser client: webcam + microphone → /v1/live, questions → streamed answers, live stats.
import { LiveClient } from "./protocol.js";

const $ = (id) => document.getElementById(id);
const MAX_WIDTH = 640; // pixels: frames are scaled down to this before JPEG encoding
const MAX_BUFFERED = 2 << 20; // bytes waiting in the socket: above this a frame is dropped here

// Exposed for tests and the curious: what this page has sent and received.
const state = (window.streamer = {
  client: null, stream: null, audioCtx: null, timer: null, t0: 0,
  framesSent: 0, framesDroppedLocally: 0, audioChunksSent: 0, audioSamplesSent: 0, audioStartS: null,
  answers: [], stats: null, errors: [], asking: null,
});

function setStatus(text, kind = "idle") {
  $("status").textContent = text;
  $("status").className = "status " + kind;
}

function nowS() { return (performance.now() - state.t0) / 1000; }

function wsUrl() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const key = $("api-key").value || new URLSearchParams(location.search).get("api_key") || "";
  return `${proto}://${location.host}/v1/live` + (key ? `?api_key=${encodeURIComponent(key)}` : "");
}

function showError(msg) {
  state.errors.push(msg);
  const line = document.createElement("div");
  line.textContent = msg.seq != null ? `${msg.code} (seq ${msg.seq}): ${msg.message}` : `${msg.code}: ${msg.message}`;
  $("errors").prepend(line);
  while ($("errors").childElementCount > 5) $("errors").lastChild.remove();
}

async function start() {
  $("start").disabled = true;
  setStatus("starting…");
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 } },
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
    });
    $("preview").srcObject = state.stream;
    const fps = Number($("fps").value) || 1;
    const client = new LiveClient(wsUrl());
    state.client = client;
    wire(client);
    const ready = await client.open({
      system_prompt: $("system").value || null,
      fps,
      sampling: { max_new_tokens: Number($("max-tokens").value) || 64 },
    });
    state.t0 = performance.now();
    state.sessionId = ready.session_id;
    setStatus("live · " + ready.session_id.slice(0, 13), "live");
    for (const id of ["question", "choices", "ask", "stop"]) $(id).disabled = false;
    state.timer = setInterval(sendFrame, 1000 / fps);
    await startAudio(client);
  } catch (err) {
    setStatus("error", "error");
    showError({ code: "client", message: String(err.message || err) });
    stop();
  }
}

function sendFrame() {
  const video = $("preview");
  const client = state.client;
  if (!client || !client.open_ || video.videoWidth === 0) return;
  if (client.buffered > MAX_BUFFERED) { state.framesDroppedLocally++; return; } // the network is behind
  const scale = Math.min(1, MAX_WIDTH / video.videoWidth);
  const canvas = $("grab");
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  const tS = nowS();
  canvas.toBlob(async (blob) => {
    if (!blob || !client.open_) return;
    if (client.sendFrame(await blob.arrayBuffer(), tS)) {
      state.framesSent++;
      $("s-sent").textContent = state.framesSent;
    }
  }, "image/jpeg", 0.8);
}

async function startAudio(client) {
  const ctx = new AudioContext();
  state.audioCtx = ctx;
  await ctx.audioWorklet.addModule("pcm-worklet.js");
  const node = new AudioWorkletNode(ctx, "pcm-capture");
  node.port.onmessage = ({ data }) => {
    $("level").style.width = Math.min(100, Math.round(Math.sqrt(data.level) * 100)) + "%";
    if (state.audioStartS === null) state.audioStartS = nowS();
    // timestamps follow the sample clock, so chunks line up exactly on the server
    const tS = state.audioStartS + state.audioSamplesSent / ctx.sampleRate;
    if (client.sendAudio(data.pcm, ctx.sampleRate, tS)) {
      state.audioChunksSent++;
      state.audioSamplesSent += data.pcm.byteLength / 2;
    }
  };
  ctx.createMediaStreamSource(state.stream).connect(node);
  if (ctx.state === "suspended") await ctx.resume();
}

function wire(client) {
  client.addEventListener("answer_delta", ({ detail }) => {
    if (!state.asking || detail.request_id !== state.asking.id) return;
    state.asking.text += detail.text;
    $("answer").textContent = state.asking.text;
  });
  client.addEventListener("answer_done", ({ detail }) => {
    if (!state.asking || detail.request_id !== state.asking.id) return;
    const a = state.asking;
    state.asking = null;
    $("answer").classList.remove("streaming");
    a.done = detail;
    state.answers.push(a);
    if (detail.ttft_s != null) $("s-ttft").textContent = (detail.ttft_s * 1000).toFixed(0) + " ms";
    $("s-latency").textContent = ((performance.now() - a.askedAt) / 1000).toFixed(2) + " s";
    const li = document.createElement("li");
    li.textContent = `${a.question} → ${a.text.trim() || "(no text)"} [${detail.finish_reason}, ${detail.tokens} tokens]`;
    $("history").prepend(li);
    if (detail.finish_reason === "error") showError({ code: detail.error_code, message: detail.error_message });
  });
  client.addEventListener("stats", ({ detail }) => {
    state.stats = detail;
    const fill = detail.max_context_tokens ? detail.context_tokens / detail.max_context_tokens : 0;
    $("s-fill").style.width = (fill * 100).toFixed(1) + "%";
    $("s-context").textContent = `${detail.context_tokens} / ${detail.max_context_tokens} tokens`;
    $("s-frames").textContent = detail.frames;
    $("s-audio").textContent = detail.audio_s.toFixed(1) + " s";
    $("s-dropped").textContent = detail.dropped_frames + state.framesDroppedLocally;
    $("s-skipped").textContent = detail.skipped_frames;
    $("s-evictions").textContent = detail.evictions;
    $("s-queued").textContent = `${detail.queued_tokens} tokens`;
  });
  client.addEventListener("error", ({ detail }) => showError(detail));
  client.addEventListener("go_away", ({ detail }) =>
    setStatus(`ending in ${Math.round(detail.seconds_left)} s (${detail.reason})`, "live"));
  client.addEventListener("close", ({ detail }) => {
    setStatus(`closed (${detail.code})`, detail.code === 1000 ? "idle" : "error");
    stop(false);
  });
}

function ask(event) {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question || !state.client) return;
  const choices = $("choices").value.split(",").map((c) => c.trim()).filter(Boolean);
  const id = "web-" + Math.random().toString(36).slice(2, 10);
  state.asking = { id, question, text: "", askedAt: performance.now() };
  $("answer").textContent = "";
  $("answer").classList.add("streaming");
  state.client.send({ type: "ask", question, request_id: id, ...(choices.length ? { choices } : {}) });
  $("question").value = "";
}

function stop(sendClose = true) {
  clearInterval(state.timer);
  state.timer = null;
  if (sendClose && state.client) state.client.close();
  if (state.audioCtx) state.audioCtx.close();
  state.audioCtx = null;
  if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
  state.stream = null;
  state.audioStartS = null;
  state.audioSamplesSent = 0;
  for (const id of ["question", "choices", "ask", "stop"]) $(id).disabled = true;
  $("start").disabled = false;
}

$("start").addEventListener("click", start);
$("stop").addEventListener("click", () => stop(true));
$("ask-form").addEventListener("submit", ask);
