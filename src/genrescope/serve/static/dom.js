// The page's small helpers: elements by id, new elements, the error banner, status pills and
// the formats of times, probabilities and sizes.

export const $ = (id) => document.getElementById(id);

export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export function fmtTime(s) {
  if (!isFinite(s) || s < 0) s = 0;
  const m = Math.floor(s / 60), sec = Math.floor(s % 60);
  return `${m}:${String(sec).padStart(2, '0')}`;
}

export const pct = (p) => `${Math.round(p * 100)}%`;

export function fmtBytes(n) {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(n >= 10 << 20 ? 0 : 1)} MB` : `${Math.ceil(n / 1024)} kB`;
}

export function showError(message) {
  $('error-text').textContent = message;
  $('error').hidden = false;
}

export function clearError() { $('error').hidden = true; $('error-text').textContent = ''; }

export function setPill(id, text, cls) {
  const p = $(id);
  p.textContent = text;
  p.className = `pill ${cls || ''}`.trim();
}
