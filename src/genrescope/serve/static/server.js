// Analysis on the genrescope server for the page, the twin of local.js's LocalAnalyser: the same
// methods, called the same way. analyse() posts the file to /api/predict/stream (see /docs) and
// hands each event of the answer (start, windows..., result) to onEvent; it resolves with the
// result (POST /api/predict's JSON) and rejects with the server's message when the analysis fails.

// fetch, rejecting with the server's error message (its JSON "error") when the answer is not ok
export async function api(path, options) {
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

// the JSON lines of a streamed answer, one object each
async function* jsonLines(resp) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (line) yield JSON.parse(line);
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

export class ServerAnalyser {
  // The server's settings and limits (/api/config).
  async config() {
    return (await api('/api/config')).json();
  }

  // The models on offer: {models: [{id, name, ...}], default} (/api/models).
  async models() {
    return (await api('/api/models')).json();
  }

  // Have the server load a model now, before the first file needs it.
  async load(id) {
    await api(`/api/models/${encodeURIComponent(id)}`);
  }

  // Analyse one file; onEvent receives start / windows / result events as they stream in.
  // Resolves with the result; once `signal` aborts, the upload stops with an AbortError.
  async analyse(file, modelId, onEvent, { signal } = {}) {
    const form = new FormData();
    form.append('model', modelId);
    form.append('top', '0');
    form.append('file', file, file.name);
    const resp = await api('/api/predict/stream', { method: 'POST', body: form, signal });
    for await (const ev of jsonLines(resp)) {
      if (ev.event === 'error') throw new Error(ev.error);
      onEvent(ev);
      if (ev.event === 'result') return ev.result;
    }
    throw new Error('the server stopped before the analysis finished');
  }
}
