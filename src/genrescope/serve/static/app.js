// genrescope web page: upload a file (or listen to the microphone) and show its genres over time.
// Two modes: the server's HTTP API (see /docs), or in this browser (local.js: Web Audio decoding,
// features.js in a worker, onnxruntime-web), which is the only mode of the page `genrescope
// export --web` writes (<html data-mode="static">). Both feed the same events to handleEvent,
// and both leave the finished analysis in window.genrescope.result, shaped like POST
// /api/predict's JSON.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  // Tableau 10: distinct for the top genres; later ones get spread-out hues
  const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7',
                   '#9c755f', '#bab0ac'];
  const SMOOTH_S = 4;      // the "Now playing" bars average the last SMOOTH_S seconds
  const NOW_BARS = 8;      // genres in the "Now playing" chart
  const SUMMARY_TOP = 6;   // genres in the summary
  const CHART_SHOWN = 5;   // timeline lines shown at first
  const LEGEND_FIRST = 12; // legend chips before "more"
  const MIN_SMOOTHED = 4;  // fewer windows than this: nothing to smooth, the chart shows them raw

  const STATIC = document.documentElement.dataset.mode === 'static';
  const state = {
    mode: STATIC ? 'browser' : 'server',
    local: new window.GenrescopeLocal.LocalAnalyser('webmodels/manifest.json', 'static/worker.js'),
    result: null,     // the finished analysis of the current file (POST /api/predict's shape)
    config: null,
    file: null,
    blobUrl: null,
    abort: null,
    job: null,        // the analysis on screen (see newJob)
    colors: new Map(),
    chart: null,
    rawChart: false,  // the chart shows the model's raw windows instead of the smoothed belief
    live: null,
    debug: { updates: { timeupdate: 0, seeked: 0, frame: 0, data: 0 }, estimates: 0 },
  };
  window.genrescope = state;  // for the browser test and for curious people

  // ------------------------------------------------------------------ helpers
  function fmtTime(s) {
    if (!isFinite(s) || s < 0) s = 0;
    const m = Math.floor(s / 60), sec = Math.floor(s % 60);
    return `${m}:${String(sec).padStart(2, '0')}`;
  }
  const pct = (p) => `${Math.round(p * 100)}%`;
  function fmtBytes(n) {
    return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(n >= 10 << 20 ? 0 : 1)} MB` : `${Math.ceil(n / 1024)} kB`;
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function colorOf(label) {
    if (!state.colors.has(label)) {
      const i = state.colors.size;
      state.colors.set(label, i < PALETTE.length ? PALETTE[i] : `hsl(${(i * 47) % 360} 45% 50%)`);
    }
    return state.colors.get(label);
  }

  function showError(message) {
    $('error-text').textContent = message;
    $('error').hidden = false;
  }
  function clearError() { $('error').hidden = true; $('error-text').textContent = ''; }

  async function api(path, options) {
    const resp = await fetch(path, options);
    if (!resp.ok) {
      let msg = `${resp.status} ${resp.statusText}`;
      try { msg = (await resp.json()).error || msg; } catch (e) { /* not JSON */ }
      const err = new Error(msg);
      err.status = resp.status;
      throw err;
    }
    return resp;
  }

  // ------------------------------------------------------------------ models and limits
  // the model menu from the in-browser manifest (the exported page, or a served page gone offline)
  async function modelsFromManifest() {
    const manifest = await state.local.models();
    const sel = $('model');
    sel.replaceChildren(...manifest.models.map((m) => { const o = el('option', null, m.name); o.value = m.id; return o; }));
    sel.value = manifest.default;
    $('version').textContent = manifest.genrescope_version;
    $('limits').textContent = 'any format this browser plays · analysed here, nothing is uploaded';
  }

  async function initStatic() {
    $('mode-pick').hidden = true;
    $('where').textContent = 'runs in this browser; your audio stays on this device';
    try {
      await modelsFromManifest();
    } catch (e) {
      showError(`Cannot load the in-browser models: ${e.message}`);
    }
  }

  function setMode(mode) {
    state.mode = mode;
    $('in-browser').checked = mode === 'browser';
    try { localStorage.setItem('genrescope-mode', mode); } catch (e) { /* private mode */ }
    $('where').textContent = mode === 'browser' ? 'analysing in this browser; your audio stays on this device'
      : 'runs on this computer';
  }

  async function init() {
    if (STATIC) { await initStatic(); return; }
    let saved = null;
    try { saved = localStorage.getItem('genrescope-mode'); } catch (e) { /* private mode */ }
    setMode(saved === 'browser' ? 'browser' : 'server');
    try {
      state.config = await (await api('/api/config')).json();
      const models = await (await api('/api/models')).json();
      const sel = $('model');
      for (const m of models.models) {
        const o = el('option', null, m.origin === 'model-dir' ? `${m.name} (${m.id})` : m.name);
        o.value = m.id;
        sel.append(o);
      }
      sel.value = models.default;
      $('version').textContent = state.config.version;
      const lim = state.config.limits;
      const mins = lim.max_duration_s / 60;
      const dur = mins >= 1 ? `${+mins.toFixed(1)} min` : `${lim.max_duration_s} s`;
      $('limits').textContent = `wav, flac, ogg, mp3 and more · up to ${fmtBytes(lim.max_upload_bytes)} and ${dur}`;
    } catch (e) {
      try {  // offline, with the page from the service worker: analyse here instead
        await modelsFromManifest();
        setMode('browser');
        $('in-browser').disabled = true;
        showError(`The genrescope server is not reachable (${e.message}); analysing in this browser instead.`);
      } catch (e2) {
        showError(`Cannot reach the genrescope server: ${e.message}`);
      }
    }
  }

  function onModelChange() {
    const id = $('model').value;
    if (state.mode === 'server') fetch(`/api/models/${encodeURIComponent(id)}`).catch(() => {});  // load it now
    if (state.file) analyse(state.file);
    if (state.live) { stopLive(); startLive(); }
  }

  // ------------------------------------------------------------------ file analysis
  function newJob(file) {
    return { name: file.name, labels: [], genreLabels: [], multi: true, duration: 0, start: [], end: [],
             probs: [], ranking: [], done: false, failed: false, shown: null, touched: false, mode: state.mode };
  }

  async function analyse(file) {
    clearError();
    if (state.abort) state.abort.abort();
    const lim = state.config && state.config.limits;
    if (lim && file.size > lim.max_upload_bytes) {
      showError(`${file.name} is ${fmtBytes(file.size)}; the limit is ${fmtBytes(lim.max_upload_bytes)}.`);
      return;
    }
    state.file = file;
    state.result = null;
    state.segments = null;
    state.saliency = null;
    $('saliency-btn').hidden = true;
    $('saliency-note').textContent = '';
    $('segments').replaceChildren();
    $('segments-text').textContent = '';
    const job = state.job = newJob(file);
    resetResult(file);
    if (state.mode === 'browser') { await analyseHere(job, file); return; }
    const form = new FormData();
    form.append('model', $('model').value);
    form.append('top', '0');
    form.append('file', file, file.name);
    const abort = state.abort = new AbortController();
    try {
      const resp = await api('/api/predict/stream', { method: 'POST', body: form, signal: abort.signal });
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i).trim();
          buf = buf.slice(i + 1);
          if (line && state.job === job) handleEvent(job, JSON.parse(line));
        }
      }
      if (state.job === job && !job.done && !job.failed) failJob(job, 'the server stopped before the analysis finished');
    } catch (e) {
      if (e.name === 'AbortError' || state.job !== job) return;
      failJob(job, e.message);
    } finally {
      if (state.abort === abort) state.abort = null;
    }
  }

  // in this browser: the same events as the server's stream, from local.js
  async function analyseHere(job, file) {
    state.abort = null;
    $('meta').textContent = `${fmtBytes(file.size)} · decoding in this browser…`;
    try {
      await state.local.analyse(file, $('model').value, (ev) => { if (state.job === job) handleEvent(job, ev); });
    } catch (e) {
      if (state.job === job) failJob(job, e.message);
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
    if (state.chart) { state.chart.destroy(); state.chart = null; }
    const player = $('player');
    const keep = state.blobUrl && state.blobFile === file ? player.currentTime : 0;
    if (!(state.blobUrl && state.blobFile === file)) {
      if (state.blobUrl) URL.revokeObjectURL(state.blobUrl);
      state.blobUrl = URL.createObjectURL(file);
      state.blobFile = file;
      player.src = state.blobUrl;
    } else {
      player.currentTime = keep;
    }
  }

  function setPill(id, text, cls) {
    const p = $(id);
    p.textContent = text;
    p.className = `pill ${cls || ''}`.trim();
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
      const r = ev.result;
      state.result = r;
      job.done = true;
      job.ranking = r.genres;
      job.duration = r.duration_s;
      $('meta').textContent = `${fmtTime(r.duration_s)} · ${r.timeline.start_s.length} windows · model ${r.model}`;
      $('progress').hidden = true;
      setPill('state', 'done', 'done');
      const tags = (r.tags || []).slice(0, 6).map((t) => `${t.label} ${pct(t.probability)}`);
      $('tags').textContent = tags.length ? `Also heard: ${tags.join(' · ')}` : '';
      renderSummary(job);
      renderChart(job);
      renderSegments(job, r);
      // saliency reruns the model in this browser on the analysis it holds: not for a server's analysis
      $('saliency-btn').hidden = job.mode !== 'browser';
      updatePlayback('data');
    } else if (ev.event === 'error') {
      failJob(job, ev.error);
    }
  }

  function renderSummary(job) {
    const ol = $('genres');
    ol.replaceChildren();
    for (const g of job.ranking.slice(0, SUMMARY_TOP)) {
      const li = el('li');
      li.dataset.label = g.label;
      li.dataset.value = g.probability.toFixed(4);
      const track = el('div', 'track');
      const fill = el('div', 'fill');
      fill.style.width = `${Math.min(100, g.probability * 100)}%`;
      fill.style.background = colorOf(g.label);
      track.append(fill);
      li.append(el('span', 'label', g.label), track, el('span', 'pct', pct(g.probability)));
      ol.append(li);
    }
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

  function renderNow(job, t, source) {
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
      box.replaceChildren(...genres.map((g) => {
        const row = el('div', 'bar');
        row.dataset.label = g;
        const track = el('div', 'track');
        const fill = el('div', 'fill');
        fill.style.background = colorOf(g);
        track.append(fill);
        row.append(el('span', 'name', g), track, el('span', 'val'));
        return row;
      }));
      box.dataset.genres = genres.join('|');
    }
    for (const row of box.children) {
      const p = dist[job.labels.indexOf(row.dataset.label)];
      row.dataset.value = p.toFixed(4);
      row.querySelector('.fill').style.width = `${Math.min(100, p * 100).toFixed(1)}%`;
      row.querySelector('.val').textContent = pct(p);
    }
  }

  // ------------------------------------------------------------------ timeline chart (uPlot)
  // the rows the chart draws: the smoothed belief (insight.js smooth), or the raw windows on demand
  function chartRows(job) {
    const raw = state.rawChart || job.start.length < MIN_SMOOTHED;
    job.view = raw ? job.probs : window.GenrescopeInsight.smooth(job.start, job.end, job.probs);
    job.viewRaw = raw;
    return job.view;
  }

  function chartData(job) {
    const x = job.start.map((s, k) => (s + job.end[k]) / 2);
    const rows = chartRows(job);
    return [x, ...job.gidx.map((j) => rows.map((row) => row[j]))];
  }

  function chartNote(job) {
    const span = window.GenrescopeInsight.SMOOTH_SPAN_S;
    const note = $('chart-note');
    note.dataset.view = job.viewRaw ? 'raw' : 'smoothed';
    note.textContent = job.viewRaw
      ? 'Lines: each model window\u2019s own probabilities (one point per window, unsmoothed).'
      : `Lines: each genre\u2019s probability averaged over a centred ${span} s span of model windows ` +
        '(single windows are noisy; sections last longer). Tick \u201craw windows\u201d to see them.';
  }

  // the segments bar spans exactly the chart's plot area, so a segment sits under its seconds
  function alignSegments() {
    if (!state.chart) return;
    const plot = state.chart.over.getBoundingClientRect(), box = $('chart').getBoundingClientRect();
    const bar = $('segments');
    bar.style.marginLeft = `${Math.round(plot.left - box.left)}px`;
    bar.style.width = `${Math.round(plot.width)}px`;
  }

  function renderChart(job) {
    if (!job.start.length) return;
    if (!job.shown || (!job.touched && job.done)) {
      job.shown = new Set(job.ranking.slice(0, CHART_SHOWN).map((g) => g.label));
    }
    const box = $('chart');
    if (!state.chart) {
      for (const g of job.ranking) colorOf(g.label);
      const opts = {
        width: Math.max(280, box.clientWidth),
        height: box.clientWidth < 500 ? 200 : 260,
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
      state.chart = new uPlot(opts, chartData(job), box);
      const head = el('div', 'playhead');
      state.chart.over.append(head);
      state.playhead = head;
      state.chart.over.addEventListener('click', (e) => {
        const t = state.chart.posToVal(e.offsetX, 'x');
        const player = $('player');
        if (isFinite(t)) player.currentTime = Math.max(0, Math.min(t, player.duration || job.duration));
      });
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

  function movePlayhead(t) {
    if (!state.chart || !state.playhead) return;
    const x = state.chart.valToPos(t, 'x');
    state.playhead.style.left = `${isFinite(x) ? x : 0}px`;
  }

  // ------------------------------------------------------------------ segments, saliency
  function renderSegments(job, r) {
    const segs = state.segments = window.GenrescopeInsight.segments(r.timeline, r.genres);
    const box = $('segments'), dur = Math.max(r.duration_s, 1);  // the chart's x range: [0, max(duration, 1)]
    box.replaceChildren(...segs.map((g) => {
      const d = el('div', 'seg', g.label);
      d.style.width = `${((Math.min(g.end_s, dur) - g.start_s) / dur) * 100}%`;
      d.style.background = colorOf(g.label);
      d.title = `${fmtTime(g.start_s)}–${fmtTime(g.end_s)} ${g.label} (${pct(g.probability)})`;
      return d;
    }));
    $('segments-text').textContent = segs.length > 1
      ? `Segments: ${segs.map((g) => `${fmtTime(g.start_s)}–${fmtTime(g.end_s)} ${g.label}`).join(', ')}` : '';
  }

  async function showSaliency() {
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

  // ------------------------------------------------------------------ playback
  let raf = 0;
  function updatePlayback(source) {
    const job = state.job;
    if (!job) return;
    const t = $('player').currentTime;
    state.debug.updates[source] = (state.debug.updates[source] || 0) + 1;
    if (job.start.length) renderNow(job, t, source);
    movePlayhead(t);
  }
  function frame() {
    state.debug.updates.frame++;
    movePlayhead($('player').currentTime);  // the cursor glides; the bars follow timeupdate
    raf = requestAnimationFrame(frame);
  }

  // ------------------------------------------------------------------ microphone
  async function startLive() {
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
      const row = el('div', 'bar');
      row.dataset.label = g.label;
      row.dataset.value = g.probability.toFixed(4);
      const track = el('div', 'track');
      const fill = el('div', 'fill');
      fill.style.width = `${Math.min(100, g.probability * 100).toFixed(1)}%`;
      fill.style.background = colorOf(g.label);
      track.append(fill);
      row.append(el('span', 'name', g.label), track, el('span', 'val', pct(g.probability)));
      return row;
    }));
  }

  function stopLive(keepCard) {
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

  // ------------------------------------------------------------------ wiring
  function wire() {
    const drop = $('drop'), input = $('file');
    $('pick').addEventListener('click', (e) => { e.stopPropagation(); input.click(); });
    drop.addEventListener('click', () => input.click());
    drop.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); input.click(); } });
    input.addEventListener('change', () => {
      if (input.files.length) analyse(input.files[0]);
      input.value = '';  // choosing the same file again analyses it again
    });
    for (const type of ['dragenter', 'dragover']) {
      drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add('over'); });
    }
    for (const type of ['dragleave', 'drop']) {
      drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.remove('over'); });
    }
    drop.addEventListener('drop', (e) => {
      const f = e.dataTransfer && e.dataTransfer.files[0];
      if (f) analyse(f);
    });
    // a file dropped beside the drop zone is analysed rather than opened by the browser
    window.addEventListener('dragover', (e) => e.preventDefault());
    window.addEventListener('drop', (e) => {
      e.preventDefault();
      const f = e.dataTransfer && e.dataTransfer.files[0];
      if (f && !drop.contains(e.target)) analyse(f);
    });
    $('error-close').addEventListener('click', clearError);
    $('model').addEventListener('change', onModelChange);
    $('record').addEventListener('click', () => (state.live ? stopLive() : startLive()));
    $('saliency-btn').addEventListener('click', showSaliency);
    $('raw-toggle').addEventListener('change', (e) => {
      state.rawChart = e.target.checked;
      if (state.job && state.job.start.length) renderChart(state.job);
    });
    $('in-browser').addEventListener('change', () => {
      setMode($('in-browser').checked ? 'browser' : 'server');
      if (state.file) analyse(state.file);
    });

    const player = $('player');
    player.addEventListener('timeupdate', () => updatePlayback('timeupdate'));
    player.addEventListener('seeked', () => updatePlayback('seeked'));
    player.addEventListener('play', () => { cancelAnimationFrame(raf); raf = requestAnimationFrame(frame); });
    for (const type of ['pause', 'ended']) player.addEventListener(type, () => cancelAnimationFrame(raf));
    player.addEventListener('error', () => {
      if (state.job && !state.job.failed) $('tags').textContent += ' (this browser cannot play this format)';
    });
    let resizeTimer = 0;
    window.addEventListener('resize', () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => {
        if (!state.chart) return;
        const w = $('chart').clientWidth;
        state.chart.setSize({ width: Math.max(280, w), height: w < 500 ? 200 : 260 });
        alignSegments();
        movePlayhead(player.currentTime);
      }, 100);
    });
  }

  // the installable app: a service worker keeps the page and its in-browser models for offline use
  if ('serviceWorker' in navigator && (location.protocol === 'https:' || ['localhost', '127.0.0.1'].includes(location.hostname))) {
    state.serviceWorker = navigator.serviceWorker.register('sw.js').catch((e) => { state.serviceWorkerError = String(e); });
  }

  wire();
  init();
})();
