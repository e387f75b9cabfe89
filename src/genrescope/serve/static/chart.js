// The timeline chart (uPlot, the global its script sets): each genre's probability over the song,
// smoothed (insight.js smooth) or the raw windows on demand, its legend, the hover readout and
// the playhead. The segments bar below it is kept exactly under its plot area.
import { $, el, fmtTime, pct } from './dom.js';
import { smooth, SMOOTH_SPAN_S } from './insight.js';
import { colorOf, state } from './state.js';

const CHART_SHOWN = 5;   // timeline lines shown at first
const LEGEND_FIRST = 12; // legend chips before "more"
const MIN_SMOOTHED = 4;  // fewer windows than this: nothing to smooth, the chart shows them raw

// the rows the chart draws: the smoothed belief, or the raw windows on demand
function chartRows(job) {
  const raw = state.rawChart || job.start.length < MIN_SMOOTHED;
  job.view = raw ? job.probs : smooth(job.start, job.end, job.probs);
  job.viewRaw = raw;
  return job.view;
}

function chartData(job) {
  const x = job.start.map((s, k) => (s + job.end[k]) / 2);
  const rows = chartRows(job);
  return [x, ...job.gidx.map((j) => rows.map((row) => row[j]))];
}

function chartNote(job) {
  const note = $('chart-note');
  note.dataset.view = job.viewRaw ? 'raw' : 'smoothed';
  note.textContent = job.viewRaw
    ? 'Lines: each model window\u2019s own probabilities (one point per window, unsmoothed).'
    : `Lines: each genre\u2019s probability averaged over a centred ${SMOOTH_SPAN_S} s span of model windows ` +
      '(single windows are noisy; sections last longer). Tick \u201craw windows\u201d to see them.';
}

// the segments bar spans exactly the chart's plot area, so a segment sits under its seconds
export function alignSegments() {
  if (!state.chart) return;
  const plot = state.chart.over.getBoundingClientRect(), box = $('chart').getBoundingClientRect();
  const bar = $('segments');
  bar.style.marginLeft = `${Math.round(plot.left - box.left)}px`;
  bar.style.width = `${Math.round(plot.width)}px`;
}

function chartSize() {
  const w = $('chart').clientWidth;
  return { width: Math.max(280, w), height: w < 500 ? 200 : 260 };
}

function createChart(job) {
  for (const g of job.ranking) colorOf(g.label);
  const opts = {
    ...chartSize(),
    scales: { x: { time: false, range: () => [0, Math.max(job.duration, 1)] }, y: { range: [0, 1] } },
    axes: [
      { values: (u, vals) => vals.map(fmtTime), stroke: '#5b6275', grid: { stroke: '#eef0f4' } },
      { values: (u, vals) => vals.map((v) => `${Math.round(v * 100)}%`), size: 54, stroke: '#5b6275',
        grid: { stroke: '#eef0f4' } },
    ],
    series: [{}, ...job.genreLabels.map((g) => ({
      label: g, stroke: colorOf(g), width: 2, show: job.shown.has(g), points: { show: false } }))],
    legend: { show: false },
    cursor: { drag: { x: false, y: false }, points: { show: false }, y: false },
    hooks: { setCursor: [(u) => hoverReadout(job, u)], setSize: [() => alignSegments()] },
  };
  const chart = state.chart = new window.uPlot(opts, chartData(job), $('chart'));
  const head = el('div', 'playhead');
  chart.over.append(head);
  state.playhead = head;
  chart.over.addEventListener('click', (e) => {
    const t = chart.posToVal(e.offsetX, 'x');
    const player = $('player');
    if (isFinite(t)) player.currentTime = Math.max(0, Math.min(t, player.duration || job.duration));
  });
}

export function renderChart(job) {
  if (!job.start.length) return;
  if (!job.shown || (!job.touched && job.done)) {
    job.shown = new Set(job.ranking.slice(0, CHART_SHOWN).map((g) => g.label));
  }
  if (!state.chart) {
    createChart(job);
  } else {
    state.chart.setData(chartData(job), false);
    state.chart.redraw(true, false);
    job.genreLabels.forEach((g, i) => {
      if (state.chart.series[i + 1].show !== job.shown.has(g)) state.chart.setSeries(i + 1, { show: job.shown.has(g) });
    });
  }
  renderLegend(job);
  chartNote(job);
  alignSegments();
  movePlayhead($('player').currentTime);
}

export function destroyChart() {
  if (state.chart) { state.chart.destroy(); state.chart = null; }
}

// after the window's size changed
export function resizeChart() {
  if (!state.chart) return;
  state.chart.setSize(chartSize());
  alignSegments();
  movePlayhead($('player').currentTime);
}

function renderLegend(job) {
  const legend = $('legend');
  const order = job.ranking.map((g) => g.label);
  const all = legend.dataset.all === '1';
  const chips = order.slice(0, all ? order.length : LEGEND_FIRST).map((g) => {
    const b = el('button', 'chip');
    b.type = 'button';
    b.setAttribute('aria-pressed', String(job.shown.has(g)));
    const sw = el('span', 'sw');
    sw.style.background = colorOf(g);
    b.append(sw, document.createTextNode(g));
    b.addEventListener('click', () => {
      job.touched = true;
      if (job.shown.has(g)) job.shown.delete(g); else job.shown.add(g);
      renderChart(job);
    });
    return b;
  });
  if (order.length > LEGEND_FIRST) {
    const more = el('button', 'chip more', all ? 'fewer' : `+${order.length - LEGEND_FIRST} more`);
    more.type = 'button';
    more.addEventListener('click', () => { legend.dataset.all = all ? '0' : '1'; renderLegend(job); });
    chips.push(more);
  }
  legend.replaceChildren(...chips);
}

function hoverReadout(job, u) {
  const i = u.cursor.idx;
  if (i == null || !job.probs[i]) { $('hover').textContent = ''; return; }
  const row = (job.view || job.probs)[i];
  const top = job.genreLabels.map((g, j) => [g, row[job.gidx[j]]]).sort((a, b) => b[1] - a[1]).slice(0, 3);
  $('hover').textContent = `${fmtTime(job.start[i])}–${fmtTime(job.end[i])}: ` +
    top.map(([g, p]) => `${g} ${pct(p)}`).join(', ');
}

export function movePlayhead(t) {
  if (!state.chart || !state.playhead) return;
  const x = state.chart.valToPos(t, 'x');
  state.playhead.style.left = `${isFinite(x) ? x : 0}px`;
}
