// The genres as bars: the summary's ranking of the whole file and the "Now playing" chart, the
// distribution around the playback position.
import { $, el, fmtTime, pct } from './dom.js';
import { colorOf } from './state.js';

export const SMOOTH_S = 4;      // the "Now playing" bars average the last SMOOTH_S seconds
export const NOW_BARS = 8;      // genres in the "Now playing" chart (and the microphone's)
const SUMMARY_TOP = 6;          // genres in the summary

// one bar: the genre's name, a track filled in its colour, the value (the classes the summary's
// list items use differ from the bar charts')
export function barRow(label, { tag = 'div', cls = 'bar', name = 'name', value = 'val' } = {}) {
  const row = el(tag, cls);
  row.dataset.label = label;
  const track = el('div', 'track');
  const fill = el('div', 'fill');
  fill.style.background = colorOf(label);
  track.append(fill);
  row.append(el('span', name, label), track, el('span', value));
  return row;
}

export function renderSummary(job) {
  $('genres').replaceChildren(...job.ranking.slice(0, SUMMARY_TOP).map((g) => {
    const li = barRow(g.label, { tag: 'li', cls: null, name: 'label', value: 'pct' });
    li.dataset.value = g.probability.toFixed(4);
    li.querySelector('.fill').style.width = `${Math.min(100, g.probability * 100)}%`;
    li.querySelector('.pct').textContent = pct(g.probability);
    return li;
  }));
}

// the "Now playing" distribution: the timeline averaged over [t - SMOOTH_S, t], each
// window weighted by how much of that span it covers
function distributionAt(job, t) {
  let lo = Math.max(0, t - SMOOTH_S), hi = t;
  if (hi - lo < 0.5) hi = lo + 0.5;
  const sums = new Float64Array(job.labels.length);
  let wsum = 0;
  for (let k = 0; k < job.start.length; k++) {
    const w = Math.min(hi, job.end[k]) - Math.max(lo, job.start[k]);
    if (w <= 0) continue;
    const row = job.probs[k];
    for (let j = 0; j < row.length; j++) sums[j] += w * row[j];
    wsum += w;
  }
  if (wsum === 0) return null;
  for (let j = 0; j < sums.length; j++) sums[j] /= wsum;
  return sums;
}

export function renderNow(job, t, source) {
  const box = $('now-bars');
  box.dataset.time = t.toFixed(2);
  box.dataset.source = source;
  $('now-time').textContent = fmtTime(t);
  const dist = distributionAt(job, t);
  const genres = job.ranking.slice(0, NOW_BARS).map((g) => g.label);
  if (!dist || !genres.length) {
    box.replaceChildren();
    box.classList.add('empty');
    return;
  }
  box.classList.remove('empty');
  if (box.dataset.genres !== genres.join('|')) {  // rebuild only when the genres change
    box.replaceChildren(...genres.map((g) => barRow(g)));
    box.dataset.genres = genres.join('|');
  }
  for (const row of box.children) {
    const p = dist[job.labels.indexOf(row.dataset.label)];
    row.dataset.value = p.toFixed(4);
    row.querySelector('.fill').style.width = `${Math.min(100, p * 100).toFixed(1)}%`;
    row.querySelector('.val').textContent = pct(p);
  }
}
