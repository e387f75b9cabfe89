// genrescope's in-browser analysis, off the page's thread: features (features.js) from the
// model's FeatureConfig, then the model's ONNX graph on onnxruntime-web (wasm, one thread: no
// cross-origin isolation needed). A model is described by an entry of webmodels/manifest.json
// (written by `genrescope export --web`, or served by `genrescope serve`), and each graph is run
// as it is, one session per graph: a self-contained graph gives the probabilities and, when its
// entry names them, the tags; a head behind a shipped backbone runs two graphs, the backbone's
// (its `row` outputs, concatenated, and its tags) and then the head's on that row.
//
// Messages in:  {type: 'load', manifestUrl, model}
//               {type: 'analyse', id, samples: Float32Array (mono, at the model's sr)}
//               {type: 'features', id, samples, config?, kind?}   (the raw features, for tests)
//               {type: 'saliency', id, labels, occlude_s}   (occlusion saliency of the last analysis)
// Messages out: {type: 'loaded', model, ms} | {type: 'windows', id, start_s, end_s, probabilities,
//               tags, decoded_s} | {type: 'done', id, seconds} | {type: 'features', id, data, n_bins,
//               n_frames, ms} | {type: 'saliency', id, ...} | {type: 'progress', id, done, total}
//               | {type: 'error', id, message}
/* global ort, GenrescopeFeatures */
'use strict';
importScripts('features.js', 'vendor/onnxruntime-web/ort.wasm.min.js');

ort.env.wasm.numThreads = 1;
ort.env.wasm.proxy = false;
ort.env.wasm.wasmPaths = new URL('vendor/onnxruntime-web/', self.location.href).href;

const F = GenrescopeFeatures;
let current = null;  // {entry, graph: {session, ...entry.graph}} or {entry, head: {session, backbone: {session, ...}}}
let last = null;     // the last analysis: {feats, w, probs, n} for saliency
const sessions = new Map();  // graph URL -> InferenceSession (a backbone shared by heads loads once)

async function session(url) {
  if (!sessions.has(url)) sessions.set(url, ort.InferenceSession.create(url, { executionProviders: ['wasm'] }));
  return sessions.get(url);
}

async function load(manifestUrl, modelId) {
  const t0 = performance.now();
  const manifest = await (await fetch(manifestUrl)).json();
  const entry = manifest.models.find((m) => m.id === modelId);
  if (!entry) throw new Error(`model ${modelId} is not in ${manifestUrl}`);
  const base = new URL(manifestUrl, self.location.href);
  const open = async (g) => ({ ...g, session: await session(new URL(g.file, base).href) });
  if (entry.head) {
    current = { entry, head: { ...(await open(entry.head)), backbone: await open(entry.head.backbone) } };
  } else if (entry.graph) {
    current = { entry, graph: await open(entry.graph) };
  } else {
    throw new Error(`model ${modelId}: this page cannot read its manifest entry (export it again)`);
  }
  return performance.now() - t0;
}

// The named outputs of one graph on one input: name -> Float32Array.
async function runGraph(g, input, names) {
  const res = await g.session.run({ [g.input]: input }, names);
  return Object.fromEntries(names.map((n) => [n, res[n].data]));
}

// A head behind its backbone: the backbone's row outputs side by side, then the head's graph.
async function runHead(x) {
  const { entry, head } = current, bb = head.backbone;
  const out = await runGraph(bb, new ort.Tensor('float32', x, [1, entry.n_bins, entry.window_frames]),
                             [...new Set([...bb.row, bb.tags])]);
  const row = new Float32Array(bb.row.reduce((a, n) => a + out[n].length, 0));
  let k = 0;
  for (const n of bb.row) { row.set(out[n], k); k += out[n].length; }
  const res = await runGraph(head, new ort.Tensor('float32', row, [1, row.length]), [head.output]);
  return { probs: Array.from(res[head.output]), tags: Array.from(out[bb.tags]) };
}

// One window through the model: (nBins * win) features -> {probs: (G) by entry label, tags: (K) or null}.
async function runWindow(x) {
  if (current.head) return runHead(x);
  const { entry, graph } = current;
  const names = graph.tags ? [graph.output, graph.tags] : [graph.output];
  const res = await runGraph(graph, new ort.Tensor('float32', x, [1, entry.n_bins, entry.window_frames]), names);
  return { probs: Array.from(res[graph.output]), tags: graph.tags ? Array.from(res[graph.tags]) : null };
}

async function analyse(id, samples) {
  const { entry } = current, cfg = entry.feature_config;
  const t0 = performance.now();
  const feats = F.compute(samples, cfg, entry.input);
  const t1 = performance.now();
  const w = F.sliceWindows(feats, cfg, entry.window_frames, entry.window_hop_frames);
  const batch = { start_s: [], end_s: [], probabilities: [], tags: [] };
  let lastPost = performance.now();
  for (let i = 0; i < w.starts.length; i++) {
    batch.start_s.push(w.startS[i]);
    batch.end_s.push(w.endS[i]);
    const out = await runWindow(w.get(i));
    batch.probabilities.push(out.probs);
    if (out.tags) batch.tags.push(out.tags);
    const last = i === w.starts.length - 1;
    if (last || performance.now() - lastPost > 250) {  // a few updates a second, like the server's stream
      postMessage({ type: 'windows', id, ...batch, decoded_s: w.endS[i] });
      batch.start_s = []; batch.end_s = []; batch.probabilities = []; batch.tags = [];
      lastPost = performance.now();
    }
  }
  const t2 = performance.now();
  last = { feats, w, n: samples.length };
  postMessage({ type: 'done', id, seconds: { features: (t1 - t0) / 1000, model: (t2 - t1) / 1000,
                                            windows: w.starts.length } });
}

// Occlusion saliency, as insight/saliency.py: each occlude_s stretch of each window set to the
// feature value of silence, the drop of each label's probability, averaged on one grid of stretches.
async function saliency(id, labels, occludeS) {
  if (!last) throw new Error('analyse a file first');
  const { entry } = current, cfg = entry.feature_config, rate = cfg.sr / cfg.hop_length;
  const fill = F.compress(new Float32Array([0]), cfg)[0];
  const chunk = Math.max(1, Math.round(occludeS * rate)), win = entry.window_frames, nb = entry.n_bins;
  const cols = labels.map((l) => entry.labels.indexOf(l));
  const nChunks = Math.ceil(win / chunk), nBins = Math.ceil(Math.max(last.feats.nFrames, win) / chunk);
  const total = Array.from({ length: nBins }, () => new Float64Array(cols.length)), count = new Float64Array(nBins);
  const W = last.w.starts.length;
  for (let i = 0; i < W; i++) {
    const x = last.w.get(i), full = (await runWindow(x)).probs;
    for (let c = 0; c < nChunks; c++) {
      const occ = x.slice();
      for (let b = 0; b < nb; b++) occ.fill(fill, b * win + c * chunk, Math.min(b * win + (c + 1) * chunk, (b + 1) * win));
      const p = (await runWindow(occ)).probs;
      const bin = Math.min(nBins - 1, Math.floor((last.w.starts[i] + c * chunk) / chunk));
      cols.forEach((j, k) => { total[bin][k] += full[j] - p[j]; });
      count[bin] += 1;
    }
    postMessage({ type: 'progress', id, done: i + 1, total: W });
  }
  const out = { start_s: [], end_s: [], drop: [] }, dur = last.n / cfg.sr, step = chunk / rate;
  for (let b = 0; b < nBins; b++) {
    if (!count[b]) continue;
    out.start_s.push(b * chunk / rate);
    out.end_s.push(Math.min(b * chunk / rate + step, dur));
    out.drop.push(Array.from(total[b], (v) => v / count[b]));
  }
  return { method: 'occlusion', occlude_s: step, labels, ...out };
}

self.onmessage = async (e) => {
  const msg = e.data;
  try {
    if (msg.type === 'load') {
      postMessage({ type: 'loaded', id: msg.id, model: msg.model, ms: await load(msg.manifestUrl, msg.model) });
    } else if (msg.type === 'analyse') {
      if (!current) throw new Error('no model loaded');
      await analyse(msg.id, msg.samples);
    } else if (msg.type === 'saliency') {
      postMessage({ type: 'saliency', id: msg.id, result: await saliency(msg.id, msg.labels, msg.occlude_s || 0.5) });
    } else if (msg.type === 'features') {
      const cfg = msg.config || current.entry.feature_config;
      const t0 = performance.now();
      const f = F.compute(msg.samples, cfg, msg.kind || (current ? current.entry.input : 'log_mel'));
      postMessage({ type: 'features', id: msg.id, data: f.data, n_bins: f.nBins, n_frames: f.nFrames,
                    ms: performance.now() - t0 }, [f.data.buffer]);
    }
  } catch (err) {
    postMessage({ type: 'error', id: msg.id, message: String((err && err.message) || err) });
  }
};
