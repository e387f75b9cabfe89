// The segments bar under the timeline: the song cut where its genre changes (insight.js
// segments, with the switching cost and candidate genres of the manifest's "segments").
import { $, el, fmtTime, pct } from './dom.js';
import { segments } from './insight.js';
import { manifestConstant } from './local.js';
import { colorOf, state } from './state.js';

export function clearSegments() {
  state.segments = null;
  $('segments').replaceChildren();
  $('segments-text').textContent = '';
}

// r: the result (POST /api/predict's shape); manifest: the in-browser manifest, null when the page
// could not load it (a served page whose server answers no manifest: no segments then)
export function renderSegments(r, manifest) {
  const segs = state.segments = manifest ? segments(r.timeline, r.genres,
    manifestConstant(manifest, 'segments', 'switch_cost'), manifestConstant(manifest, 'segments', 'max_genres')) : [];
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
