// Segments of a genre timeline for the page: the same Viterbi decoding as
// src/genrescope/insight/segments.py (emission log p renormalised over the track's top genres, a
// cost in nats per change of genre), held to it by tests/test_browser_insight.py. The switching
// cost and the number of candidate genres are Python's (insight/segments.py SWITCH_COST,
// MAX_GENRES): the page reads them from the exported manifest's "segments", so none is copied here.

// the state path maximising sum_t logEmit[t][s_t] - cost * #changes (ties keep the state)
export function viterbi(logEmit, cost) {
  const T = logEmit.length, S = logEmit[0].length;
  let score = Float64Array.from(logEmit[0]);
  const back = [];
  for (let t = 1; t < T; t++) {
    let best = 0;
    for (let s = 1; s < S; s++) if (score[s] > score[best]) best = s;
    const sw = score[best] - cost, next = new Float64Array(S), bk = new Int32Array(S);
    for (let s = 0; s < S; s++) {
      const stay = score[s] >= sw;
      bk[s] = stay ? s : best;
      next[s] = (stay ? score[s] : sw) + logEmit[t][s];
    }
    back.push(bk);
    score = next;
  }
  const path = new Int32Array(T);
  let last = 0;
  for (let s = 1; s < S; s++) if (score[s] > score[last]) last = s;
  path[T - 1] = last;
  for (let t = T - 1; t > 0; t--) path[t - 1] = back[t - 1][path[t]];
  return path;
}

// timeline: {labels, start_s, end_s, probabilities}; genres: [{label, probability}] highest first;
// cost: nats per change of genre; maxGenres: the candidates, the track's top genres
export function segments(timeline, genres, cost, maxGenres) {
  const cand = genres.slice(0, maxGenres).map((g) => g.label);
  if (!cand.length || !timeline.start_s.length) return [];
  const idx = cand.map((g) => timeline.labels.indexOf(g));
  const probs = timeline.probabilities;
  const logEmit = probs.map((row) => {
    const p = idx.map((j) => Math.max(row[j], 1e-9));
    const sum = p.reduce((a, b) => a + b, 0);
    return p.map((v) => Math.log(v / sum));
  });
  const path = viterbi(logEmit, cost);
  const centre = timeline.start_s.map((s, k) => (s + timeline.end_s[k]) / 2);
  const cuts = [0];
  for (let t = 1; t < path.length; t++) if (path[t] !== path[t - 1]) cuts.push(t);
  cuts.push(path.length);
  const r3 = (v) => Math.round(v * 1000) / 1000;
  const out = [];
  for (let k = 0; k + 1 < cuts.length; k++) {
    const a = cuts[k], b = cuts[k + 1], j = idx[path[a]];
    let mean = 0;
    for (let t = a; t < b; t++) mean += probs[t][j];
    out.push({ start_s: r3(a === 0 ? timeline.start_s[0] : (centre[a - 1] + centre[a]) / 2),
               end_s: r3(b === path.length ? timeline.end_s[path.length - 1] : (centre[b - 1] + centre[b]) / 2),
               label: cand[path[a]], probability: Math.round((mean / (b - a)) * 1e4) / 1e4 });
  }
  return out;
}

// The timeline as a person can read it: each window's probabilities replaced by the mean over
// the windows within a centred span of spanS seconds, each weighted by how much of the span it
// covers. The model's 3 s windows are noisy (one bar of a fill or a break swings them); genres
// change with a song's sections, which last 10-30 s, so a 12 s span (about four windows) keeps
// the sections and drops the window-to-window jitter. Returns one row per window, like probs.
export const SMOOTH_SPAN_S = 12;

export function smooth(start, end, probs, spanS = SMOOTH_SPAN_S) {
  const n = start.length;
  const out = new Array(n);
  let lo = 0;
  for (let k = 0; k < n; k++) {
    const c = (start[k] + end[k]) / 2, a = c - spanS / 2, b = c + spanS / 2;
    while (lo < n && end[lo] <= a) lo++;
    const row = new Float64Array(probs[k].length);
    let wsum = 0;
    for (let i = lo; i < n && start[i] < b; i++) {
      const w = Math.min(b, end[i]) - Math.max(a, start[i]);
      if (w <= 0) continue;
      const p = probs[i];
      for (let j = 0; j < row.length; j++) row[j] += w * p[j];
      wsum += w;
    }
    out[k] = wsum > 0 ? Array.from(row, (v) => v / wsum) : Array.from(probs[k]);
  }
  return out;
}
