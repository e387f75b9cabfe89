// The page's shared state, one object: which mode analyses, the analysis on screen, the chart,
// the live microphone, the genres' colours. window.genrescope is this object (for the browser
// tests and for curious people); every module imports it from here.
import { LocalAnalyser } from './local.js';
import { ServerAnalyser } from './server.js';

// Tableau 10: distinct for the top genres; later ones get spread-out hues
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7',
                 '#9c755f', '#bab0ac'];

// the exported page (`genrescope export --web`): <html data-mode="static">, no server behind it
export const STATIC = document.documentElement.dataset.mode === 'static';

export const state = {
  mode: STATIC ? 'browser' : 'server',
  local: new LocalAnalyser('webmodels/manifest.json', 'static/worker.js'),  // analyses in this browser
  server: new ServerAnalyser(),  // analyses on the genrescope server
  result: null,     // the finished analysis of the current file (POST /api/predict's shape)
  segments: null,   // its segments (insight.js segments)
  saliency: null,   // its occlusion saliency, once asked for
  config: null,     // the server's /api/config
  file: null,
  blobUrl: null,
  blobFile: null,
  abort: null,      // the AbortController of the analysis in flight
  job: null,        // the analysis on screen (see analysis.js newJob)
  colors: new Map(),
  chart: null,
  playhead: null,
  rawChart: false,  // the chart shows the model's raw windows instead of the smoothed belief
  live: null,
  debug: { updates: { timeupdate: 0, seeked: 0, frame: 0, data: 0 }, estimates: 0 },
};

// the analyser of the current mode: both have the same interface (models, load, analyse)
export function analyser() { return state.mode === 'browser' ? state.local : state.server; }

export function colorOf(label) {
  if (!state.colors.has(label)) {
    const i = state.colors.size;
    state.colors.set(label, i < PALETTE.length ? PALETTE[i] : `hsl(${(i * 47) % 360} 45% 50%)`);
  }
  return state.colors.get(label);
}
