// One file's analysis on screen: start it with the analyser of the current mode (state.js
// analyser: the server's or this browser's, called the same way), and show its events (start,
// windows..., result) as they come: the summary, the chart, the segments, the saliency button.
import { destroyChart, renderChart } from './chart.js';
import { $, clearError, fmtBytes, fmtTime, pct, setPill, showError } from './dom.js';
import { playFile, updatePlayback } from './playback.js';
import { renderSummary, SMOOTH_S } from './ranking.js';
import { clearSaliency, offerSaliency } from './saliency.js';
import { clearSegments, renderSegments } from './segments-bar.js';
import { analyser, state } from './state.js';

function newJob(file) {
  return { name: file.name, labels: [], genreLabels: [], multi: true, duration: 0, start: [], end: [],
           probs: [], ranking: [], done: false, failed: false, shown: null, touched: false, mode: state.mode };
}

export async function analyse(file) {
  clearError();
  if (state.abort) state.abort.abort();
  const lim = state.config && state.config.limits;  // the server's upload limit
  if (lim && file.size > lim.max_upload_bytes) {
    showError(`${file.name} is ${fmtBytes(file.size)}; the limit is ${fmtBytes(lim.max_upload_bytes)}.`);
    return;
  }
  state.file = file;
  state.result = null;
  clearSaliency();
  clearSegments();
  const job = state.job = newJob(file);
  resetResult(file);
  if (job.mode === 'browser') $('meta').textContent = `${fmtBytes(file.size)} · decoding in this browser…`;
  const abort = state.abort = new AbortController();
  try {
    await analyser().analyse(file, $('model').value, (ev) => { if (state.job === job) handleEvent(job, ev); },
                             { signal: abort.signal });
  } catch (e) {
    if (e.name === 'AbortError' || state.job !== job) return;
    failJob(job, e.message);
  } finally {
    if (state.abort === abort) state.abort = null;
  }
}

function resetResult(file) {
  $('result').hidden = false;
  $('title').textContent = file.name;
  $('meta').textContent = `${fmtBytes(file.size)} · uploading…`;
  setPill('state', 'analysing', '');
  $('progress').hidden = false;
  $('progress-bar').style.width = '0%';
  $('genres').replaceChildren();
  $('tags').textContent = '';
  $('prob-note').textContent = '';
  $('now-bars').replaceChildren();
  $('now-bars').classList.add('empty');
  $('legend').replaceChildren();
  $('hover').textContent = '';
  destroyChart();
  playFile(file);
}

function failJob(job, message) {
  job.failed = true;
  $('progress').hidden = true;
  setPill('state', 'failed', 'bad');
  if (!job.start.length) $('result').hidden = true;
  // the server's messages already start with the file's name
  const reason = message.startsWith(`${job.name}: `) ? message.slice(job.name.length + 2) : message;
  showError(`Could not analyse ${job.name}: ${reason}`);
}

function handleEvent(job, ev) {
  if (ev.event === 'start') {
    job.labels = ev.labels;
    job.genreLabels = ev.genre_labels;
    job.gidx = ev.genre_labels.map((g) => ev.labels.indexOf(g));
    job.multi = ev.multi_label;
    job.duration = ev.duration_s;
    job.model = ev.model;
    $('meta').textContent = `${fmtTime(ev.duration_s)} · ${fmtBytes(ev.size)} · model ${ev.model}`;
    $('prob-note').textContent = job.multi
      ? 'Tag probabilities: each genre is judged on its own, so they need not add up to 100%.'
      : `Probabilities over the model's ${ev.genre_labels.length} genres (they add up to 100%).`;
    $('now-note').textContent = `Averaged over the last ${SMOOTH_S} s of playback.`;
  } else if (ev.event === 'windows') {
    for (let k = 0; k < ev.start_s.length; k++) {
      job.start.push(ev.start_s[k]);
      job.end.push(ev.end_s[k]);
      job.probs.push(ev.probabilities[k]);
    }
    job.ranking = ev.genres;
    const frac = job.duration ? Math.min(1, ev.decoded_s / job.duration) : 0;
    $('progress-bar').style.width = `${(frac * 100).toFixed(1)}%`;
    setPill('state', `analysing ${Math.round(frac * 100)}%`, '');
    renderSummary(job);
    renderChart(job);
    updatePlayback('data');
  } else if (ev.event === 'result') {
    job.done = true;
    showResult(job, ev.result).catch((e) => failJob(job, e.message));
  }
}

// The finished analysis; state.result is set last (the browser tests wait for it). The segments'
// constants come from the in-browser manifest, already loaded in browser mode.
async function showResult(job, r) {
  const manifest = await state.local.models().catch(() => null);
  if (state.job !== job) return;
  job.ranking = r.genres;
  job.duration = r.duration_s;
  $('meta').textContent = `${fmtTime(r.duration_s)} · ${r.timeline.start_s.length} windows · model ${r.model}`;
  $('progress').hidden = true;
  setPill('state', 'done', 'done');
  const tags = (r.tags || []).slice(0, 6).map((t) => `${t.label} ${pct(t.probability)}`);
  $('tags').textContent = tags.length ? `Also heard: ${tags.join(' · ')}` : '';
  renderSummary(job);
  renderChart(job);
  renderSegments(r, manifest);
  offerSaliency(job);
  updatePlayback('data');
  state.result = r;
}
