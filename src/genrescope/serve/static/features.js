// genrescope's feature path in JavaScript: the same STFT, mel filterbank, log compression,
// MFCC and model windows as src/genrescope/features/spectrogram.py and windows.py, driven by
// the model's FeatureConfig (read from the exported model's metadata by `genrescope export
// --web` and written into webmodels/manifest.json). No constant of the feature path lives
// here: every number comes from `cfg`. tests/test_browser_inference.py holds this file to the
// Python path in a real browser. A classic script, not an ES module: worker.js loads it with
// importScripts, and the page (local.js) reads the global it sets.
//
// Arrays: a feature matrix is {data: Float32Array, nBins, nFrames}, row-major by bin, i.e.
// data[b * nFrames + t], the layout of Python's (n_bins, n_frames) C-ordered array.
(function (root) {
  'use strict';

  // ---------------------------------------------------------------- mel scale (Slaney / HTK)
  const F_SP = 200 / 3, MIN_LOG_HZ = 1000, MIN_LOG_MEL = 1000 / F_SP, LOGSTEP = Math.log(6.4) / 27;

  function hzToMel(f, htk) {
    if (htk) return 2595 * Math.log10(1 + f / 700);
    return f >= MIN_LOG_HZ ? MIN_LOG_MEL + Math.log(f / MIN_LOG_HZ) / LOGSTEP : f / F_SP;
  }
  function melToHz(m, htk) {
    if (htk) return 700 * (Math.pow(10, m / 2595) - 1);
    return m >= MIN_LOG_MEL ? MIN_LOG_HZ * Math.exp(LOGSTEP * (m - MIN_LOG_MEL)) : F_SP * m;
  }
  // numpy.linspace: start + i * step, the last point exactly stop
  function linspace(a, b, n) {
    const out = new Float64Array(n), step = (b - a) / (n - 1);
    for (let i = 0; i < n; i++) out[i] = a + i * step;
    out[n - 1] = b;
    return out;
  }
  const fmaxOf = (cfg) => (cfg.fmax === null || cfg.fmax === undefined ? cfg.sr / 2 : cfg.fmax);

  // Triangular filters as {lo, hi, w} per band: the non-zero bins [lo, hi) and their weights
  // (rounded to float32 like Python's filterbank). Same construction as mel_filterbank().
  function melFilterbank(cfg) {
    const nBins = 1 + (cfg.n_fft >> 1), nMels = cfg.n_mels, htk = !!cfg.mel_htk;
    const fft = linspace(0, cfg.sr / 2, nBins);
    const melPts = linspace(hzToMel(cfg.fmin, htk), hzToMel(fmaxOf(cfg), htk), nMels + 2);
    const f = Array.from(melPts, (m) => melToHz(m, htk));
    if (cfg.mel_norm !== null && cfg.mel_norm !== 'slaney') throw new Error(`mel_norm ${cfg.mel_norm} is not supported`);
    const bands = [];
    for (let m = 0; m < nMels; m++) {
      const d0 = f[m + 1] - f[m], d1 = f[m + 2] - f[m + 1];
      const enorm = cfg.mel_norm === 'slaney' ? 2 / (f[m + 2] - f[m]) : 1;
      let lo = -1, hi = -1;
      const w = [];
      for (let k = 0; k < nBins; k++) {
        const lower = -(f[m] - fft[k]) / d0, upper = (f[m + 2] - fft[k]) / d1;
        const v = Math.max(0, Math.min(lower, upper)) * enorm;
        if (v > 0) { if (lo < 0) lo = k; hi = k + 1; }
        w.push(v);
      }
      if (lo < 0) { lo = 0; hi = 0; }
      bands.push({ lo, hi, w: Float32Array.from(w.slice(lo, hi)) });
    }
    return bands;
  }

  // ---------------------------------------------------------------- STFT
  function hann(n) {  // periodic, float32 (scipy get_window('hann', n))
    const w = new Float32Array(n);
    for (let i = 0; i < n; i++) w[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n);
    return w;
  }

  function pad(y, cfg) {
    if (!cfg.center) return y;
    const p = cfg.n_fft >> 1, n = y.length;
    const out = new Float32Array(n + 2 * p);
    out.set(y, p);
    if (cfg.pad_mode === 'reflect' && n > p) {  // numpy 'reflect': the edge sample is not repeated
      for (let i = 0; i < p; i++) { out[p - 1 - i] = y[i + 1]; out[p + n + i] = y[n - 2 - i]; }
    } else if (cfg.pad_mode !== 'constant' && cfg.pad_mode !== 'reflect') {
      throw new Error(`pad_mode ${cfg.pad_mode} is not supported`);
    }
    return out;
  }

  function nFrames(nSamples, cfg) {
    if (cfg.center) return 1 + Math.floor(nSamples / cfg.hop_length);
    return nSamples < cfg.n_fft ? 0 : 1 + Math.floor((nSamples - cfg.n_fft) / cfg.hop_length);
  }

  // In-place iterative radix-2 complex FFT of (re, im), length a power of two.
  function makeFft(n) {
    if (n < 2 || (n & (n - 1)) !== 0) throw new Error(`in-browser features need a power-of-two n_fft, got ${n}`);
    const rev = new Uint32Array(n), cos = new Float64Array(n / 2), sin = new Float64Array(n / 2);
    const bits = Math.log2(n);
    for (let i = 0; i < n; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      rev[i] = r;
    }
    for (let i = 0; i < n / 2; i++) { cos[i] = Math.cos((2 * Math.PI * i) / n); sin[i] = -Math.sin((2 * Math.PI * i) / n); }
    return function fft(re, im) {
      for (let i = 0; i < n; i++) {
        const j = rev[i];
        if (j > i) { let t = re[i]; re[i] = re[j]; re[j] = t; t = im[i]; im[i] = im[j]; im[j] = t; }
      }
      for (let size = 2; size <= n; size <<= 1) {
        const half = size >> 1, step = n / size;
        for (let s = 0; s < n; s += size) {
          for (let k = 0; k < half; k++) {
            const c = cos[k * step], si = sin[k * step], a = s + k, b = a + half;
            const tr = re[b] * c - im[b] * si, ti = re[b] * si + im[b] * c;
            re[b] = re[a] - tr; im[b] = im[a] - ti; re[a] += tr; im[a] += ti;
          }
        }
      }
    };
  }

  // |rfft(frame * hann)| ** power of every frame: calls visit(t, spectrum) with a reused
  // Float64Array of 1 + n_fft / 2 bins.
  function eachSpectrum(y, cfg, visit) {
    const n = cfg.n_fft, hop = cfg.hop_length, nb = 1 + (n >> 1);
    const yp = pad(y, cfg), win = hann(n), fft = makeFft(n);
    const T = yp.length < n ? 0 : 1 + Math.floor((yp.length - n) / hop);
    const re = new Float64Array(n), im = new Float64Array(n), spec = new Float64Array(nb);
    for (let t = 0; t < T; t++) {
      const off = t * hop;
      for (let i = 0; i < n; i++) { re[i] = Math.fround(yp[off + i] * win[i]); im[i] = 0; }
      fft(re, im);
      for (let k = 0; k < nb; k++) {
        const p2 = re[k] * re[k] + im[k] * im[k];
        spec[k] = cfg.power === 2 ? p2 : cfg.power === 1 ? Math.sqrt(p2) : Math.pow(p2, cfg.power / 2);
      }
      visit(t, spec);
    }
    return T;
  }

  function melspectrogram(y, cfg) {
    const bands = melFilterbank(cfg), T = nFrames(y.length, cfg), M = cfg.n_mels;
    const data = new Float32Array(M * T);
    eachSpectrum(y, cfg, (t, spec) => {
      for (let m = 0; m < M; m++) {
        const { lo, hi, w } = bands[m];
        let s = 0;
        for (let k = lo; k < hi; k++) s += spec[k] * w[k - lo];
        data[m * T + t] = s;
      }
    });
    return { data, nBins: M, nFrames: T };
  }

  function stftPower(y, cfg) {
    const nb = 1 + (cfg.n_fft >> 1), T = nFrames(y.length, cfg), data = new Float32Array(nb * T);
    eachSpectrum(y, cfg, (t, spec) => { for (let k = 0; k < nb; k++) data[k * T + t] = spec[k]; });
    return { data, nBins: nb, nFrames: T };
  }

  // ---------------------------------------------------------------- log compression, MFCC
  function powerToDb(S, amin, topDb) {
    const out = new Float32Array(S.length);
    let mx = -Infinity;
    for (let i = 0; i < S.length; i++) { out[i] = 10 * Math.log10(Math.max(S[i], amin)); if (out[i] > mx) mx = out[i]; }
    if (topDb !== null && topDb !== undefined && S.length) {
      const floor = mx - topDb;
      for (let i = 0; i < out.length; i++) if (out[i] < floor) out[i] = floor;
    }
    return out;
  }

  function compress(S, cfg) {
    if (cfg.log === 'db') return powerToDb(S, cfg.log_floor, cfg.top_db);
    if (cfg.log !== 'log10_1p') throw new Error(`log ${cfg.log} is not supported`);
    const out = new Float32Array(S.length), k = cfg.log_scale;
    for (let i = 0; i < S.length; i++) out[i] = Math.log10(1 + k * S[i]);
    return out;
  }

  function mfccFromMel(mel, cfg) {  // orthonormal DCT-II of the dB mel spectrogram
    const db = powerToDb(mel.data, cfg.log_floor, cfg.mfcc_top_db), M = mel.nBins, T = mel.nFrames, K = cfg.n_mfcc;
    const data = new Float32Array(K * T);
    for (let k = 0; k < K; k++) {
      const scale = k === 0 ? Math.sqrt(1 / M) : Math.sqrt(2 / M);
      const basis = Float64Array.from({ length: M }, (_, m) => Math.cos((Math.PI * k * (2 * m + 1)) / (2 * M)) * scale);
      for (let t = 0; t < T; t++) {
        let s = 0;
        for (let m = 0; m < M; m++) s += db[m * T + t] * basis[m];
        data[k * T + t] = s;
      }
    }
    return { data, nBins: K, nFrames: T };
  }

  // The feature a model declares as its input (features/spectrogram.py compute()).
  function compute(y, cfg, kind) {
    if (kind === 'log_mel') { const m = melspectrogram(y, cfg); return { ...m, data: compress(m.data, cfg) }; }
    if (kind === 'mfcc') return mfccFromMel(melspectrogram(y, cfg), cfg);
    if (kind === 'stft') { const s = stftPower(y, cfg); return { ...s, data: compress(s.data, cfg) }; }
    throw new Error(`unknown feature kind ${kind}`);
  }

  // ---------------------------------------------------------------- windows (features/windows.py)
  function windowStarts(n, win, hop) {
    if (n <= win) return [0];
    const starts = [];
    for (let s = 0; s <= n - win; s += hop) starts.push(s);
    if (starts[starts.length - 1] + win < n) starts.push(n - win);
    return starts;
  }

  // Windows of `win` frames every `hop` frames; a song shorter than one window is padded with
  // its minimum. Returns {starts, startS, endS, get(i) -> Float32Array (nBins * win)}.
  function sliceWindows(feats, cfg, win, hop) {
    let { data, nBins, nFrames: n } = feats;
    const nEff = n;
    if (n < win) {
      let fill = 0;
      if (data.length) { fill = Infinity; for (const v of data) if (v < fill) fill = v; }
      const padded = new Float32Array(nBins * win).fill(fill);
      for (let b = 0; b < nBins; b++) padded.set(data.subarray(b * n, (b + 1) * n), b * win);
      data = padded; n = win;
    }
    const starts = windowStarts(n, win, hop), rate = cfg.sr / cfg.hop_length;
    return {
      starts,
      startS: starts.map((s) => s / rate),
      endS: starts.map((s) => Math.min(s + win, nEff) / rate),
      get(i) {
        const out = new Float32Array(nBins * win), s = starts[i];
        for (let b = 0; b < nBins; b++) out.set(data.subarray(b * n + s, b * n + s + win), b * win);
        return out;
      },
    };
  }

  // The track answer: the mean of the window probabilities (windows.aggregate 'mean').
  function aggregateMean(rows) {
    const G = rows[0].length, out = new Float64Array(G);
    for (const r of rows) for (let j = 0; j < G; j++) out[j] += r[j];
    for (let j = 0; j < G; j++) out[j] /= rows.length;
    return Array.from(out);
  }

  const api = { hzToMel, melToHz, melFilterbank, hann, pad, nFrames, makeFft, melspectrogram, stftPower,
                powerToDb, compress, mfccFromMel, compute, windowStarts, sliceWindows, aggregateMean };
  root.GenrescopeFeatures = api;
  if (typeof module !== 'undefined' && module.exports) module.exports = api;
})(typeof self !== 'undefined' ? self : globalThis);
