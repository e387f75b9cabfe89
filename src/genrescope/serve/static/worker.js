// genrescope's in-browser analysis, off the page's thread: features (features.js) from the
// model's FeatureConfig, then the model's ONNX graph(s) on onnxruntime-web (wasm, one
// thread: no cross-origin isolation needed). A model is described by an entry of
// webmodels/manifest.json (written by `genrescope export --web`, or served by
// `genrescope serve`): members whose outputs are merged by label (one model or an ensemble),
// or a head behind a shipped backbone: the backbone's graphs give the blocks of the head's
// input row (side by side, as inference/backbone.py), then the head's graph runs on it.
//
// Messages in:  {type: 'load', manifestUrl, model}
//               {type: 'analyse', id, samples: Float32Array (mono, at the model's sr)}
//               {type: 'features', id, samples, config?, kind?}   (the raw features, for tests)
//               {type: 'saliency', id, labels, occlude_s}   (occlusion saliency of the last analysis)
// Messages out: {type: 'loaded', model, ms} | {type: 'windows', id, start_s, end_s, probabilities,
//               decoded_s} | {type: 'done', id, seconds} | {type: 'features', id, data, n_bins,
//               n_frames, ms} | {type: 'saliency', id, ...} | {type: 'progress', id, done, total}
//               | {type: 'error', id, message}
/* global ort, GenrescopeFeatures */
'use strict';
importScripts('features.js', 'vendor/onnxruntime-web/ort.wasm.min.js');

ort.env.wasm.numThreads = 1;
ort.env.wasm.proxy = false;
ort.env.wasm.wasmPaths = new URL('vendor/onnxruntime-web/', self.location.href).href;

const F = GenrescopeFeatures;
let current = null;  // {entry, members: [{columns, graphs: [{session, input, output}]}], counts}
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
  const counts = new Float64Array(entry.labels.length);
  const members = [];
  let head = null;
  if (entry.head) {
    const h = entry.head, tagCounts = new Float64Array(h.tag_labels.length), backbone = [];
    for (const g of h.backbone) {
      const columns = g.labels.map((l) => h.tag_labels.indexOf(l));
      columns.forEach((c) => { tagCounts[c] += 1; });
      backbone.push({ session: await session(new URL(g.file, base).href), input: g.input, columns });
    }
    head = { backbone, blocks: h.blocks, tagCounts, session: await session(new URL(h.file, base).href),
             input: h.input, output: h.output };
  }
  for (const m of entry.members || []) {
    const columns = m.labels.map((l) => entry.labels.indexOf(l));
    columns.forEach((c) => { counts[c] += 1; });
    const graphs = [];
    for (const g of m.graphs) graphs.push({ session: await session(new URL(g.file, base).href), input: g.input, output: g.output });
    members.push({ columns, graphs });
  }
  current = { entry, members, counts, head };
  return performance.now() - t0;
}

// A head behind its backbone: {probs: (G) head probabilities, tags: (K) the backbone's tags}.
async function runHead(x) {
  const { entry, head } = current;
  const parts = [], tags = new Float64Array(head.tagCounts.length);
  const names = [...new Set([...head.blocks, 'probabilities'])];
  for (const b of head.backbone) {
    const res = await b.session.run({ [b.input]: new ort.Tensor('float32', x, [1, entry.n_bins, entry.window_frames]) }, names);
    for (const blk of head.blocks) parts.push(res[blk].data);
    res.probabilities.data.forEach((v, j) => { tags[b.columns[j]] += v; });
  }
  const row = new Float32Array(parts.reduce((a, d) => a + d.length, 0));
  let k = 0;
  for (const d of parts) { row.set(d, k); k += d.length; }
  const res = await head.session.run({ [head.input]: new ort.Tensor('float32', row, [1, row.length]) }, [head.output]);
  return { probs: Array.from(res[head.output].data), tags: Array.from(tags, (v, j) => v / head.tagCounts[j]) };
}

// One window through the model: (nBins * win) features -> {probs: (G) by entry label, tags: (K) or null}.
async function runWindow(x) {
  if (current.head) return runHead(x);
  const { entry, members, counts } = current;
  const out = new Float64Array(entry.labels.length);
  for (const m of members) {
    let t = new ort.Tensor('float32', x, [1, entry.n_bins, entry.window_frames]);
    for (const g of m.graphs) {
      const res = await g.session.run({ [g.input]: t }, [g.output]);
      t = res[g.output];
    }
    const p = t.data;
    m.columns.forEach((c, j) => { out[c] += p[j]; });
  }
  return { probs: Array.from(out, (v, j) => v / counts[j]), tags: null };
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
