// Live listening (the served page only): the microphone's samples go to the server's /api/live
// WebSocket, which answers a genre estimate of the last few seconds every second or so.
import { $, clearError, fmtTime, pct, setPill, showError } from './dom.js';
import { barRow, NOW_BARS } from './ranking.js';
import { state } from './state.js';

export async function startLive() {
  clearError();
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showError('This browser offers no microphone here (browsers allow it only on localhost or https).');
    return;
  }
  const live = state.live = { ws: null, ctx: null, stream: null, node: null, chunks: [], timer: 0, ready: false };
  setRecording(true);
  $('live').hidden = false;
  setPill('live-status', 'asking for the microphone', '');
  $('live-bars').replaceChildren();
  $('live-bars').classList.add('empty');
  $('live-note').textContent = '';
  try {
    live.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
    if (state.live !== live) { live.stream.getTracks().forEach((t) => t.stop()); return; }
    live.ctx = new AudioContext();
    const src = live.ctx.createMediaStreamSource(live.stream);
    live.node = await tapNode(live);
    src.connect(live.node);
    live.node.connect(live.ctx.destination);  // pulls the graph; the tap outputs silence
  } catch (e) {
    stopLive();
    showError(`The microphone is not available: ${e.message || e.name}`);
    return;
  }
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = live.ws = new WebSocket(`${proto}//${location.host}/api/live?model=${encodeURIComponent($('model').value)}`);
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => { ws.send(JSON.stringify({ sample_rate: live.ctx.sampleRate })); setPill('live-status', 'connecting', ''); };
  ws.onmessage = (m) => onLiveMessage(live, JSON.parse(m.data));
  ws.onclose = () => { if (state.live === live) { setPill('live-status', 'stopped', ''); stopLive(true); } };
  live.timer = setInterval(() => flushLive(live), 250);
}

async function tapNode(live) {
  const ctx = live.ctx;
  const push = (samples) => { if (live.ready) live.chunks.push(samples); };
  if (ctx.audioWorklet) {
    try {
      await ctx.audioWorklet.addModule('/static/pcm-worklet.js');
      const node = new AudioWorkletNode(ctx, 'pcm-tap');
      node.port.onmessage = (e) => push(e.data);
      return node;
    } catch (e) { /* fall back to the older ScriptProcessor */ }
  }
  const node = ctx.createScriptProcessor(4096, 1, 1);
  node.onaudioprocess = (e) => push(new Float32Array(e.inputBuffer.getChannelData(0)));
  return node;
}

function flushLive(live) {
  if (!live.ws || live.ws.readyState !== WebSocket.OPEN || !live.chunks.length) return;
  const n = live.chunks.reduce((a, c) => a + c.length, 0);
  const out = new Float32Array(n);
  let i = 0;
  for (const c of live.chunks) { out.set(c, i); i += c.length; }
  live.chunks = [];
  live.ws.send(out.buffer);
}

function onLiveMessage(live, msg) {
  if (state.live !== live) return;
  if (msg.event === 'ready') {
    live.ready = true;
    live.multi = msg.multi_label;
    setPill('live-status', 'listening', 'done');
    $('live-note').textContent = `Estimated every ${msg.interval_s} s from the last ${msg.seconds} s by ${msg.model}.`;
  } else if (msg.event === 'estimate') {
    state.debug.estimates++;
    $('live').dataset.count = String(state.debug.estimates);
    $('live-level').style.width = `${Math.max(0, Math.min(100, (msg.level_db + 60) / 60 * 100))}%`;
    setPill('live-status', `listening · ${fmtTime(msg.t)}`, 'done');
    renderLiveBars(msg.genres.slice(0, NOW_BARS));
  } else if (msg.event === 'error') {
    showError(`Live listening stopped: ${msg.error}`);
    stopLive();
  }
}

function renderLiveBars(genres) {
  const box = $('live-bars');
  box.classList.toggle('empty', !genres.length);
  box.replaceChildren(...genres.map((g) => {
    const row = barRow(g.label);
    row.dataset.value = g.probability.toFixed(4);
    row.querySelector('.fill').style.width = `${Math.min(100, g.probability * 100).toFixed(1)}%`;
    row.querySelector('.val').textContent = pct(g.probability);
    return row;
  }));
}

export function stopLive(keepCard) {
  const live = state.live;
  state.live = null;
  setRecording(false);
  if (!live) return;
  clearInterval(live.timer);
  if (live.ws && live.ws.readyState <= WebSocket.OPEN) live.ws.close();
  if (live.node) live.node.disconnect();
  if (live.stream) live.stream.getTracks().forEach((t) => t.stop());
  if (live.ctx) live.ctx.close().catch(() => {});
  if (!keepCard) setPill('live-status', 'stopped', '');
}

function setRecording(on) {
  $('record').setAttribute('aria-pressed', String(on));
  $('record-label').textContent = on ? 'Stop listening' : 'Listen with the microphone';
}

