// Playback of the file on screen: the player plays the file itself (a blob URL); its position
// moves the "Now playing" bars (on timeupdate and seeked) and the chart's playhead (every frame).
import { movePlayhead } from './chart.js';
import { $ } from './dom.js';
import { renderNow } from './ranking.js';
import { state } from './state.js';

let raf = 0;

// the player plays `file`; the same file again keeps its position
export function playFile(file) {
  const player = $('player');
  if (state.blobUrl && state.blobFile === file) {
    player.currentTime = player.currentTime;  // seek where it is: "seeked" redraws for the new analysis
    return;
  }
  if (state.blobUrl) URL.revokeObjectURL(state.blobUrl);
  state.blobUrl = URL.createObjectURL(file);
  state.blobFile = file;
  player.src = state.blobUrl;
}

// source: what moved it (timeupdate, seeked, data), counted in state.debug for the browser tests
export function updatePlayback(source) {
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

export function wirePlayer() {
  const player = $('player');
  player.addEventListener('timeupdate', () => updatePlayback('timeupdate'));
  player.addEventListener('seeked', () => updatePlayback('seeked'));
  player.addEventListener('play', () => { cancelAnimationFrame(raf); raf = requestAnimationFrame(frame); });
  for (const type of ['pause', 'ended']) player.addEventListener(type, () => cancelAnimationFrame(raf));
  player.addEventListener('error', () => {
    if (state.job && !state.job.failed) $('tags').textContent += ' (this browser cannot play this format)';
  });
}
