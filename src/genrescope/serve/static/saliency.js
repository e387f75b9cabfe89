// The saliency overlay on the timeline: which half seconds drove the top genre, by occlusion in
// this browser (local.js saliency). Offered only for an analysis made in this browser: it reruns
// the model on the samples the worker holds.
import { $, el, showError } from './dom.js';
import { state } from './state.js';

export function clearSaliency() {
  state.saliency = null;
  $('saliency-btn').hidden = true;
  $('saliency-note').textContent = '';
}

// after an analysis finished: the button shows for an in-browser analysis only
export function offerSaliency(job) {
  $('saliency-btn').hidden = job.mode !== 'browser';
}

export async function showSaliency() {
  const job = state.job;
  if (!job || !job.done || job.mode !== 'browser') return;  // the button shows only then
  const top = job.ranking[0].label;
  $('saliency-btn').disabled = true;
  try {
    const s = await state.local.saliency([top], (m) => {
      $('saliency-note').textContent = `silencing each half second in turn… ${Math.round((100 * m.done) / m.total)}%`;
    });
    if (state.job !== job) return;
    state.saliency = s;
    drawSaliency(job, s);
    $('saliency-note').textContent = `Shaded: how much ${top} drops when each half second is silenced.`;
  } catch (e) {
    showError(`Saliency failed: ${e.message}`);
  } finally {
    $('saliency-btn').disabled = false;
  }
}

function drawSaliency(job, s) {
  if (!state.chart) return;
  const over = state.chart.over;
  over.querySelectorAll('.saliency').forEach((n) => n.remove());
  const mx = Math.max(1e-6, ...s.drop.map((row) => row[0]));
  const dur = Math.max(job.duration, 1);
  s.start_s.forEach((t0, k) => {
    const v = s.drop[k][0];
    if (v <= 0) return;
    const d = el('div', 'saliency');
    d.style.left = `${(t0 / dur) * 100}%`;
    d.style.width = `${((s.end_s[k] - t0) / dur) * 100}%`;
    d.style.height = `${(v / mx) * 100}%`;
    over.append(d);
  });
}
