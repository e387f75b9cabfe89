// Where the analysis runs, and the model menu: the served page asks the server (its models, its
// limits) unless "In this browser" is ticked; the exported page, and a served page whose server
// is gone, analyse in this browser with the models of the in-browser manifest.
import { analyse } from './analysis.js';
import { $, el, fmtBytes, showError } from './dom.js';
import { startLive, stopLive } from './live.js';
import { analyser, state, STATIC } from './state.js';

function fillModels(models, chosen, name) {
  $('model').replaceChildren(...models.map((m) => { const o = el('option', null, name(m)); o.value = m.id; return o; }));
  $('model').value = chosen;
}

// the model menu from the in-browser manifest (the exported page, or a served page gone offline)
async function modelsFromManifest() {
  const manifest = await state.local.models();
  fillModels(manifest.models, manifest.default, (m) => m.name);
  $('version').textContent = manifest.genrescope_version;
  $('limits').textContent = 'any format this browser plays · analysed here, nothing is uploaded';
}

async function modelsFromServer() {
  state.config = await state.server.config();
  const models = await state.server.models();
  fillModels(models.models, models.default, (m) => (m.origin === 'model-dir' ? `${m.name} (${m.id})` : m.name));
  $('version').textContent = state.config.version;
  const lim = state.config.limits;
  const mins = lim.max_duration_s / 60;
  const dur = mins >= 1 ? `${+mins.toFixed(1)} min` : `${lim.max_duration_s} s`;
  $('limits').textContent = `wav, flac, ogg, mp3 and more · up to ${fmtBytes(lim.max_upload_bytes)} and ${dur}`;
  state.local.models().catch(() => {});  // the segments' constants, ready before the first result
}

export function setMode(mode) {
  state.mode = mode;
  $('in-browser').checked = mode === 'browser';
  try { localStorage.setItem('genrescope-mode', mode); } catch (e) { /* private mode */ }
  $('where').textContent = mode === 'browser' ? 'analysing in this browser; your audio stays on this device'
    : 'runs on this computer';
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

// the page's start: its mode, the model menu, the limits
export async function init() {
  if (STATIC) { await initStatic(); return; }
  let saved = null;
  try { saved = localStorage.getItem('genrescope-mode'); } catch (e) { /* private mode */ }
  setMode(saved === 'browser' ? 'browser' : 'server');
  try {
    await modelsFromServer();
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

export function onModelChange() {
  const id = $('model').value;
  analyser().load(id).catch(() => {});  // load it now
  if (state.file) analyse(state.file);
  if (state.live) { stopLive(); startLive(); }
}

export function onModeSwitch() {
  setMode($('in-browser').checked ? 'browser' : 'server');
  if (state.file) analyse(state.file);
}
