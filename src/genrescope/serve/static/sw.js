// genrescope's service worker: once the page has loaded, it works offline (the in-browser
// mode needs nothing from the network). Installing it caches the page, its scripts,
// onnxruntime-web, the in-browser model manifest and the default model's graphs; anything
// else the page fetches later (another model's graph) is cached on first use. Every cached
// answer is refreshed in the background when the network is there (stale-while-revalidate),
// so an upgrade shows on the next load. The server's /api/ is never cached.
'use strict';
const CACHE = 'genrescope-v3';  // renamed when what it holds changes (v3: manifest format 2): activating drops the old one
// the page, its scripts (static/app.js and every ES module it imports: tests/test_static_modules.py
// checks that this list names them all), the runtime, the icons and the model manifest
const SHELL = ['./', 'manifest.webmanifest', 'static/app.js', 'static/analysis.js', 'static/chart.js',
  'static/dom.js', 'static/insight.js', 'static/live.js', 'static/local.js', 'static/modes.js',
  'static/playback.js', 'static/ranking.js', 'static/saliency.js', 'static/segments-bar.js', 'static/server.js',
  'static/state.js', 'static/features.js', 'static/worker.js', 'static/style.css',
  'static/vendor/uplot/uPlot.iife.min.js', 'static/vendor/uplot/uPlot.min.css',
  'static/vendor/onnxruntime-web/ort.wasm.min.js', 'static/vendor/onnxruntime-web/ort-wasm-simd-threaded.mjs',
  'static/vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm', 'static/icons/icon-192.png',
  'static/icons/icon-512.png', 'webmodels/manifest.json'];

async function precache() {
  const cache = await caches.open(CACHE);
  await cache.addAll(SHELL);
  const manifest = await (await cache.match('webmodels/manifest.json')).json();
  const first = manifest.models.find((m) => m.id === manifest.default);
  if (first) await cache.addAll(graphFiles(first).map((f) => `webmodels/${f}`));
}

// the graph files of a manifest entry: its one graph, or a head and the backbone graph behind it
function graphFiles(model) {
  if (model.head) return [model.head.backbone.file, model.head.file];
  return model.graph ? [model.graph.file] : [];
}

self.addEventListener('install', (e) => { e.waitUntil(precache().then(() => self.skipWaiting())); });

self.addEventListener('activate', (e) => {
  e.waitUntil((async () => {
    for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== 'GET' || url.origin !== self.location.origin || url.pathname.includes('/api/')) return;
  e.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const key = e.request.mode === 'navigate' ? new URL('./', self.registration.scope).href : e.request;
    const cached = await cache.match(key);
    const fresh = fetch(e.request).then((resp) => {
      if (resp.ok && resp.type === 'basic') cache.put(key, resp.clone());
      return resp;
    });
    if (cached) { fresh.catch(() => {}); e.waitUntil(fresh.catch(() => {})); return cached; }
    return fresh;
  })());
});
