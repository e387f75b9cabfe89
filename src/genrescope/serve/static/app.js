// genrescope web page, its entry module: upload a file (or listen to the microphone) and show its
// genres over time. Two modes: the server's HTTP API (see /docs; server.js), or in this browser
// (local.js: Web Audio decoding, features.js in a worker, onnxruntime-web), which is the only mode
// of the page `genrescope export --web` writes (<html data-mode="static">). Both analysers feed the
// same events to analysis.js, and both leave the finished analysis in window.genrescope.result,
// shaped like POST /api/predict's JSON. The modules: state.js (the shared state), dom.js (helpers),
// modes.js (mode and model menu), analysis.js (a file's analysis), ranking.js (bars), chart.js
// (the timeline), segments-bar.js, saliency.js, playback.js, live.js (the microphone).
import { analyse } from './analysis.js';
import { renderChart, resizeChart } from './chart.js';
import { $, clearError } from './dom.js';
import { startLive, stopLive } from './live.js';
import { init, onModelChange, onModeSwitch } from './modes.js';
import { wirePlayer } from './playback.js';
import { showSaliency } from './saliency.js';
import { state } from './state.js';

window.genrescope = state;  // for the browser tests and for curious people

// the drop zone, the file picker, and files dropped anywhere on the page
function wireDrop() {
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
}

function wire() {
  wireDrop();
  wirePlayer();
  $('error-close').addEventListener('click', clearError);
  $('model').addEventListener('change', onModelChange);
  $('record').addEventListener('click', () => (state.live ? stopLive() : startLive()));
  $('saliency-btn').addEventListener('click', showSaliency);
  $('raw-toggle').addEventListener('change', (e) => {
    state.rawChart = e.target.checked;
    if (state.job && state.job.start.length) renderChart(state.job);
  });
  $('in-browser').addEventListener('change', onModeSwitch);
  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(resizeChart, 100);
  });
}

// the installable app: a service worker keeps the page and its in-browser models for offline use
if ('serviceWorker' in navigator && (location.protocol === 'https:' || ['localhost', '127.0.0.1'].includes(location.hostname))) {
  state.serviceWorker = navigator.serviceWorker.register('sw.js').catch((e) => { state.serviceWorkerError = String(e); });
}

wire();
init();
