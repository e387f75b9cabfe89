// Renders /openapi.json as a plain list of operations (no CDN, no framework).
(async () => {
  'use strict';
  const box = document.getElementById('paths');
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const table = (head, rows) => {
    const t = el('table');
    const tr = el('tr');
    head.forEach((h) => tr.append(el('th', null, h)));
    t.append(tr);
    rows.forEach((r) => { const row = el('tr'); r.forEach((c) => row.append(el('td', null, c))); t.append(row); });
    return t;
  };
  let spec;
  try {
    spec = await (await fetch('/openapi.json')).json();
  } catch (e) {
    box.append(el('p', 'alert', `Cannot load /openapi.json: ${e.message}`));
    return;
  }
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [verb, op] of Object.entries(ops)) {
      const card = el('section', 'card op');
      const h = el('h3');
      h.append(el('span', `verb ${verb}`, verb.toUpperCase()), el('code', null, path), el('span', null, op.summary || ''));
      card.append(h);
      if (op.description) card.append(el('p', 'note', op.description));
      const params = (op.parameters || []).map((p) => [p.name, p.in, (p.schema && p.schema.type) || '', p.required ? 'required' : '']);
      if (params.length) card.append(table(['parameter', 'in', 'type', ''], params));
      const body = op.requestBody && op.requestBody.content;
      if (body) {
        for (const [ctype, media] of Object.entries(body)) {
          const props = (media.schema && media.schema.properties) || {};
          const req = new Set((media.schema && media.schema.required) || []);
          card.append(el('p', 'note', `request body: ${ctype}`));
          card.append(table(['field', 'type', 'description'], Object.entries(props).map(([k, v]) =>
            [k + (req.has(k) ? ' (required)' : ''), v.format || v.type || '', v.description || ''])));
        }
      }
      const res = Object.entries(op.responses || {}).map(([code, r]) => [code, r.description || '']);
      if (res.length) card.append(table(['status', 'meaning'], res));
      box.append(card);
    }
  }
})();
