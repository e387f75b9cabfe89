// In-browser analysis for the page: the audio never leaves this device. The browser decodes
// the file (Web Audio) and resamples it to the model's sample rate (an OfflineAudioContext at
// that rate resamples as it decodes); channels are averaged to mono; worker.js computes the
// features and runs the model. The page receives the same events as from the server's
// /api/predict/stream (start, windows..., result), and the result has the shape of
// POST /api/predict's JSON. server.js's ServerAnalyser is its twin: the page calls both the same way.
// features.js is a classic script (the worker loads it with importScripts), so its functions come
// from the global the page's <script> tag sets.

const DECODE_SR = 48000;

// a constant the manifest carries from the Python code (serve/webexport.py page_constants)
export function manifestConstant(manifest, group, key) {
  const v = manifest && manifest[group] && manifest[group][key];
  if (typeof v !== 'number') {
    throw new Error(`the in-browser model manifest has no ${group}.${key} (written by an older genrescope?)`);
  }
  return v;
}

// Kaiser-windowed sinc low-pass, cutoff 0.96 of the new Nyquist frequency, 128 taps per unit
// of the factor (about 0.8 kHz transition at 48 -> 16 kHz, -90 dB stopband), then every
// factor-th sample; linear phase, delay compensated, zeros beyond the ends.
function besselI0(x) {
  let sum = 1, term = 1;
  for (let k = 1; k < 50; k++) { term *= (x / (2 * k)) ** 2; sum += term; if (term < 1e-12 * sum) break; }
  return sum;
}
export function decimate(y, M) {
  const N = 128 * M + 1, half = (N - 1) / 2, fc = 0.96 * 0.5 / M, beta = 8.6, h = new Float64Array(N);
  let hs = 0;
  for (let j = 0; j < N; j++) {
    const t = j - half, sinc = t === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * t) / (Math.PI * t);
    h[j] = sinc * besselI0(beta * Math.sqrt(1 - (t / half) ** 2)) / besselI0(beta);
    hs += h[j];
  }
  for (let j = 0; j < N; j++) h[j] /= hs;  // unit gain at DC
  const n = y.length, out = new Float32Array(Math.round(n / M));
  for (let k = 0; k < out.length; k++) {
    const c = k * M - half;
    let s = 0;
    const j0 = Math.max(0, -c), j1 = Math.min(N, n - c);
    for (let j = j0; j < j1; j++) s += h[j] * y[c + j];
    out[k] = s;
  }
  return out;
}
const r = (v, d) => Math.round(v * 10 ** d) / 10 ** d;

export class LocalAnalyser {
  constructor(manifestUrl, workerUrl) {
    this.manifestUrl = new URL(manifestUrl, document.baseURI).href;
    this.workerUrl = workerUrl;
    this.manifest = null;
    this.worker = null;
    this.loaded = null;  // id of the model the worker holds
    this.pending = new Map();
    this.nextId = 1;
    this.timing = null;
    this.loading = null;  // the last load asked for
  }

  async models() {
    if (!this.manifest) {
      const resp = await fetch(this.manifestUrl);
      if (!resp.ok) throw new Error(`no in-browser models here (${resp.status} for ${this.manifestUrl})`);
      this.manifest = await resp.json();
    }
    return this.manifest;
  }

  entry(id) {
    const e = this.manifest && this.manifest.models.find((m) => m.id === id);
    const why = this.manifest && this.manifest.unsupported && this.manifest.unsupported[id];
    if (!e) throw new Error(`model ${id} cannot run in the browser: ${why || 'it is not in the exported manifest'}`);
    return e;
  }

  // one request to the worker; onMessage gets its intermediate messages
  call(msg, onMessage, transfer) {
    if (!this.worker) {
      this.worker = new Worker(this.workerUrl);
      this.worker.onmessage = (e) => {
        const p = this.pending.get(e.data.id);
        if (!p) return;
        if (e.data.type === 'error') { this.pending.delete(e.data.id); p.reject(new Error(e.data.message)); }
        else if (e.data.type === 'windows' || e.data.type === 'progress') p.onMessage && p.onMessage(e.data);
        else { this.pending.delete(e.data.id); p.resolve(e.data); }
      };
      this.worker.onerror = (e) => {
        for (const p of this.pending.values()) p.reject(new Error(`the analysis worker failed: ${e.message}`));
        this.pending.clear();
      };
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onMessage });
      this.worker.postMessage({ ...msg, id }, transfer || []);
    });
  }

  // Load a model into the worker (after any load asked for before: one model at a time).
  load(id) {
    const run = async () => {
      await this.models();
      const e = this.entry(id);
      if (this.loaded !== id) {
        await this.call({ type: 'load', manifestUrl: this.manifestUrl, model: id });
        this.loaded = id;
      }
      return e;
    };
    this.loading = (this.loading || Promise.resolve()).catch(() => {}).then(run);
    return this.loading;
  }

  // Decode with Web Audio, resampled to sr; channels averaged to mono (audio/decode.py _to_mono).
  // Where sr divides 48 kHz (musicnn's 16 kHz), the browser decodes at 48 kHz (Opus's own rate;
  // other rates are upsampled, which keeps the band the model sees) and decimate() brings it to
  // sr with a steep low-pass like soxr's; Chromium's own downsampling lets more through near the
  // new Nyquist frequency. Other rates are left to Web Audio.
  static async decode(file, sr) {
    const buf = await file.arrayBuffer();
    const factor = DECODE_SR % sr === 0 ? DECODE_SR / sr : 1;
    const ctx = new OfflineAudioContext(1, 1, factor > 1 ? DECODE_SR : sr);
    let audio;
    try {
      audio = await ctx.decodeAudioData(buf);
    } catch (e) {
      throw new Error(`${file.name}: this browser could not decode it (not a supported audio file, or corrupt)`);
    }
    const n = audio.length, ch = audio.numberOfChannels;
    let y;
    if (ch === 1) {
      y = audio.getChannelData(0).slice();
    } else {
      y = new Float32Array(n);
      for (let c = 0; c < ch; c++) { const d = audio.getChannelData(c); for (let i = 0; i < n; i++) y[i] += d[i]; }
      for (let i = 0; i < n; i++) y[i] = Math.fround(y[i] / ch);
    }
    return factor > 1 ? decimate(y, factor) : y;
  }

  // The log-mel (or whatever the model reads) of given samples, from the worker: for tests.
  async features(samples, config, kind) {
    const res = await this.call({ type: 'features', samples, config, kind });
    return res;
  }

  // Occlusion saliency of the last analysis for `labels` (insight/saliency.py's method and shape).
  async saliency(labels, onProgress, occludeS = 0.5) {
    const res = await this.call({ type: 'saliency', labels, occlude_s: occludeS }, onProgress);
    const s = res.result;
    return { ...s, occlude_s: r(s.occlude_s, 4), start_s: s.start_s.map((v) => r(v, 3)),
             end_s: s.end_s.map((v) => r(v, 3)), drop: s.drop.map((row) => row.map((v) => r(v, 4))) };
  }

  // Analyse one file; onEvent receives start / windows / result events like the server's stream.
  // Resolves with the result; once `signal` aborts, no more events and an AbortError.
  async analyse(file, modelId, onEvent, { signal } = {}) {
    const t0 = performance.now();
    const entry = await this.load(modelId);
    const tLoad = performance.now();
    signal?.throwIfAborted();
    const y = await LocalAnalyser.decode(file, entry.feature_config.sr);
    const tDecode = performance.now();
    signal?.throwIfAborted();
    const emit = (ev) => { if (!signal?.aborted) onEvent(ev); };
    const result = await this.analyseSamples(y, file.name, file.size, modelId, emit);
    signal?.throwIfAborted();
    this.timing = { ...this.timing, load_s: (tLoad - t0) / 1000, decode_s: (tDecode - tLoad) / 1000,
                    total_s: (performance.now() - t0) / 1000 };
    return result;
  }

  // Analyse mono samples at the model's sample rate (decoded elsewhere, e.g. by a test).
  async analyseSamples(y, name, size, modelId, onEvent) {
    const t0 = performance.now();
    const entry = await this.load(modelId);
    const cfg = entry.feature_config;
    const duration = y.length / cfg.sr, minS = manifestConstant(this.manifest, 'limits', 'min_duration_s');
    if (duration < minS) {
      throw new Error(`${name}: is ${duration.toFixed(2)} s long; at least ${minS} s is needed`);
    }
    onEvent({ event: 'start', id: entry.id, name: entry.name, model: entry.name, labels: entry.labels,
              genre_labels: entry.genre_labels, multi_label: entry.multi_label, input: entry.input,
              sr: cfg.sr, window_s: entry.window_s, window_hop_s: entry.window_hop_s, runtime: 'onnxruntime-web',
              file: name, duration_s: r(duration, 3), size });
    const tl = { start_s: [], end_s: [], probabilities: [], tags: [] };
    const done = await this.call({ type: 'analyse', samples: y }, (m) => {
      tl.start_s.push(...m.start_s); tl.end_s.push(...m.end_s); tl.probabilities.push(...m.probabilities);
      tl.tags.push(...(m.tags || []));
      const partial = rankGenres(entry, aggregateMean(tl.probabilities));
      onEvent({ event: 'windows', start_s: m.start_s.map((v) => r(v, 3)), end_s: m.end_s.map((v) => r(v, 3)),
                probabilities: m.probabilities.map((row) => row.map((v) => r(v, 4))),
                decoded_s: r(m.decoded_s, 3), genres: partial.genres });
    }, [y.buffer]);
    const result = buildResult(entry, name, duration, tl);
    this.timing = { ...done.seconds, analyse_s: (performance.now() - t0) / 1000, duration_s: duration };
    onEvent({ event: 'result', result });
    return result;
  }
}

function aggregateMean(rows) { return globalThis.GenrescopeFeatures.aggregateMean(rows); }

// genres (and tags for a tagger), highest first: inference/taxonomy.py split_genres_and_tags
export function rankGenres(entry, track) {
  const gset = new Set(entry.genre_labels);
  const pairs = entry.labels.map((l, j) => [l, track[j]]).sort((a, b) => b[1] - a[1]);
  const fmt = ([label, p]) => ({ label, probability: r(p, 4) });
  const genres = pairs.filter(([l]) => gset.has(l)).map(fmt);
  const tags = pairs.filter(([l]) => !gset.has(l)).map(fmt);
  return { genres, tags: tags.length ? tags : null };
}

// The labels of the tags a model reports beside its answer (a head's taggers'), or null.
function tagLabelsOf(entry) {
  if (entry.head) return entry.head.backbone.tag_labels;
  return (entry.graph && entry.graph.tag_labels) || null;
}

// The object POST /api/predict answers (inference/predict.py Prediction.to_dict(timeline=True)).
export function buildResult(entry, name, duration, tl) {
  let { genres, tags } = rankGenres(entry, aggregateMean(tl.probabilities));
  const tagLabels = tagLabelsOf(entry);
  if (tagLabels && tl.tags.length) {  // a head reports every tag of the taggers behind it
    const mean = aggregateMean(tl.tags);
    tags = tagLabels.map((l, j) => [l, mean[j]]).sort((a, b) => b[1] - a[1])
      .map(([label, p]) => ({ label, probability: r(p, 4) }));
  }
  // backend and precision: onnxruntime-web's wasm backend runs float32; warnings: the browser's decoder reports none
  const out = { path: name, model: entry.name, duration_s: r(duration, 3), genres,
                multi_label: entry.multi_label, backend: 'onnxruntime-web', precision: 'fp32', error: null,
                warnings: [] };
  if (tags) out.tags = tags;
  out.timeline = { labels: entry.labels, multi_label: entry.multi_label,
                   start_s: tl.start_s.map((v) => r(v, 3)), end_s: tl.end_s.map((v) => r(v, 3)),
                   probabilities: tl.probabilities.map((row) => row.map((v) => r(v, 4))) };
  return out;
}
