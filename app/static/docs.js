// The API docs page: renders /openapi.json as readable HTML, with no external viewer.
// Everything is built with DOM calls and textContent, so nothing in the document is run as markup.
'use strict';

(() => {
  const METHOD_ORDER = ['get', 'post', 'put', 'patch', 'delete'];

  // h('tag.class', {attr: value}, ...children): a small element builder.
  function h(spec, attrs, ...children) {
    const [tag, ...classes] = spec.split('.');
    const el = document.createElement(tag);
    if (classes.length) el.className = classes.join(' ');
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== undefined && value !== null && value !== false) el.setAttribute(name, value);
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : String(child));
    }
    return el;
  }

  const refName = (ref) => ref.split('/').pop();
  const anchor = (kind, name) => `${kind}-${name.replace(/[^A-Za-z0-9_-]+/g, '-')}`;
  const opAnchor = (method, path) => anchor('op', `${method}${path}`);

  // Small inline markdown: `code` only, which is all the descriptions use.
  function prose(text, spec = 'p') {
    const el = h(spec);
    String(text || '').split(/(`[^`]+`)/).forEach((part) => {
      el.append(part.startsWith('`') && part.endsWith('`') && part.length > 1 ? h('code', {}, part.slice(1, -1)) : part);
    });
    return el;
  }

  function resolve(doc, obj) {
    let seen = 0;
    while (obj && obj.$ref && seen++ < 10) {
      obj = obj.$ref.split('/').slice(1).reduce((node, key) => (node ? node[key] : undefined), doc);
    }
    return obj || {};
  }

  // --- schemas ------------------------------------------------------------------------------

  function typeLabel(schema) {
    if (!schema || typeof schema !== 'object') return h('span', {}, 'any');
    if (schema.$ref) {
      const name = refName(schema.$ref);
      return h('a', { href: `#${anchor('schema', name)}` }, name);
    }
    const alternatives = schema.anyOf || schema.oneOf;
    if (alternatives) {
      const out = h('span');
      alternatives.forEach((alt, i) => { if (i) out.append(' | '); out.append(typeLabel(alt)); });
      return out;
    }
    if ('const' in schema) return h('code', {}, JSON.stringify(schema.const));
    if (schema.contentMediaType && schema.contentSchema) {
      return h('span', {}, `${schema.contentMediaType} text of `, typeLabel(schema.contentSchema));
    }
    const type = Array.isArray(schema.type) ? schema.type.join(' | ') : schema.type;
    if (type === 'array') return h('span', {}, 'array of ', typeLabel(schema.items));
    if (type === 'object' && schema.additionalProperties && typeof schema.additionalProperties === 'object') {
      return h('span', {}, 'map of ', typeLabel(schema.additionalProperties));
    }
    return h('span', {}, type || 'any');
  }

  function constraints(schema) {
    const parts = [];
    const branches = [schema, ...((schema.anyOf || []).filter((b) => b.type !== 'null'))];
    for (const b of branches) {
      if (b.enum) parts.push(`one of ${b.enum.map((v) => JSON.stringify(v)).join(', ')}`);
      if (b.minimum !== undefined) parts.push(`≥ ${b.minimum}`);
      if (b.maximum !== undefined) parts.push(`≤ ${b.maximum}`);
      if (b.minLength !== undefined) parts.push(`at least ${b.minLength} characters`);
      if (b.maxLength !== undefined) parts.push(`at most ${b.maxLength} characters`);
      if (b.pattern && b.pattern.length <= 40) parts.push(`matches ${b.pattern}`);
    }
    if (schema.default !== undefined && schema.default !== null) parts.push(`default ${JSON.stringify(schema.default)}`);
    return parts.join('; ');
  }

  function fieldsTable(schema) {
    const props = schema.properties || {};
    const required = new Set(schema.required || []);
    const rows = Object.entries(props).map(([name, prop]) => h('tr', {},
      h('th', { scope: 'row' }, h('code', {}, name), required.has(name) ? h('span.req', {}, 'required') : null),
      h('td', {}, typeLabel(prop)),
      h('td', {}, prose(prop.description || '', 'span'), constraints(prop) ? h('span.limits', {}, constraints(prop)) : null)));
    const table = h('table.fields', {},
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'field'), h('th', { scope: 'col' }, 'type'),
        h('th', { scope: 'col' }, 'notes'))),
      h('tbody', {}, rows));
    const notes = [];
    if (schema.additionalProperties === false) notes.push('Unknown fields are refused.');
    return [h('div.table-wrap', {}, table), notes.length ? h('p.note', {}, notes.join(' ')) : null];
  }

  function schemaBlock(doc, schema) {
    const resolved = resolve(doc, schema);
    if (resolved.properties) return [h('p.schema-name', {}, 'Schema: ', typeLabel(schema)), fieldsTable(resolved)];
    return [h('p.schema-name', {}, 'Schema: ', typeLabel(schema))];
  }

  function jsonBlock(value, label) {
    return h('pre.code', { tabindex: '0', 'aria-label': label }, JSON.stringify(value, null, 2));
  }

  // --- operations ---------------------------------------------------------------------------

  function curlFor(method, path, value) {
    const origin = window.location.origin;
    const body = JSON.stringify(value).replace(/'/g, "'\\''");
    const verb = method === 'post' ? '' : ` -X ${method.toUpperCase()}`;
    return `curl -sS${verb} ${origin}${path} -H 'Content-Type: application/json' -d '${body}'`;
  }

  function authNote(doc, op) {
    const needsKey = (op.security || doc.security || []).some((req) => Object.keys(req).length > 0);
    return h(needsKey ? 'p.auth.auth-needed' : 'p.auth', {},
      needsKey ? 'Needs a client key: Authorization: Bearer <key>.' : 'No key needed on this server.');
  }

  function renderOperation(doc, path, method, op) {
    const section = h('section.op', { id: opAnchor(method, path), 'aria-labelledby': `${opAnchor(method, path)}-h` },
      h('h3', { id: `${opAnchor(method, path)}-h` }, h(`span.method.m-${method}`, {}, method.toUpperCase()), ' ',
        h('code.path', {}, path)),
      h('p.summary', {}, op.summary || ''));
    if (op.description) section.append(prose(op.description));
    section.append(authNote(doc, op));
    if (op.parameters && op.parameters.length) {
      section.append(h('h4', {}, 'Path parameters'));
      section.append(h('ul', {}, op.parameters.map((p) => h('li', {}, h('code', {}, p.name), ' — ', typeLabel(p.schema),
        p.schema && p.schema.pattern ? h('span.limits', {}, `matches ${p.schema.pattern}`) : null))));
    }
    if (op.requestBody) {
      section.append(h('h4', {}, 'Request body'));
      for (const [type, media] of Object.entries(op.requestBody.content || {})) {
        section.append(h('p.media', {}, h('code', {}, type)), schemaBlock(doc, media.schema));
        for (const [name, ex] of Object.entries(media.examples || {})) {
          section.append(h('details.example', {}, h('summary', {}, `Example: ${ex.summary || name}`),
            jsonBlock(ex.value, `${name} example`), h('pre.code', { tabindex: '0' }, curlFor(method, path, ex.value))));
        }
      }
    }
    section.append(h('h4', {}, 'Responses'));
    const list = h('dl.responses');
    for (const [status, raw] of Object.entries(op.responses || {})) {
      const resp = resolve(doc, raw);
      const dd = h('dd', {}, prose(resp.description || '', 'span'));
      for (const [type, media] of Object.entries(resp.content || {})) {
        const schema = media.schema || {};
        dd.append(h('div.media', {}, h('code', {}, type), ' ', typeLabel(schema)));
        const data = schema.properties && schema.properties.data;
        if (data) dd.append(h('div.media', {}, 'each event\'s data: ', typeLabel(data)));
      }
      const kind = status.startsWith('2') ? 'ok' : 'err';
      list.append(h('dt', {}, h(`span.status.s-${kind}`, {}, status)), dd);
    }
    section.append(list);
    return section;
  }

  // --- the page -----------------------------------------------------------------------------

  function render(doc) {
    const content = document.getElementById('content');
    const toc = document.getElementById('toc');
    content.textContent = '';
    document.getElementById('title').textContent = `${doc.info.title} API`;
    document.title = `${doc.info.title} API ${doc.info.version}`;

    content.append(h('section.intro', { 'aria-labelledby': 'intro-h' },
      h('h2', { id: 'intro-h' }, 'Overview'),
      prose(doc.info.description),
      h('p.note', {}, `API version ${doc.info.version} · OpenAPI ${doc.openapi} · `,
        h('a', { href: 'openapi.json' }, 'download openapi.json'))));

    const schemes = (doc.components && doc.components.securitySchemes) || {};
    content.append(h('section', { id: 'auth', 'aria-labelledby': 'auth-h' }, h('h2', { id: 'auth-h' }, 'Authentication'),
      Object.entries(schemes).map(([name, s]) => [h('h3', {}, name, ' ', h('span.note', {}, `(${s.type} ${s.scheme || ''})`)),
        prose(s.description)])));

    const errors = (doc.components && doc.components.responses) || {};
    const errorRows = Object.entries(errors).map(([name, resp]) => {
      const example = resp.content && resp.content['application/json'] && resp.content['application/json'].example;
      const code = example && example.error ? example.error.code : '';
      return h('tr', {}, h('th', { scope: 'row' }, name), h('td', {}, prose(resp.description, 'span')), h('td', {}, h('code', {}, code)));
    });
    content.append(h('section', { id: 'errors', 'aria-labelledby': 'errors-h' }, h('h2', { id: 'errors-h' }, 'Errors'),
      h('p', {}, 'Every error of every endpoint has one shape, ', typeLabel({ $ref: '#/components/schemas/ErrorBody' }),
        ', and every response carries X-Request-ID.'),
      h('div.table-wrap', {}, h('table.fields', {}, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'response'),
        h('th', { scope: 'col' }, 'when'), h('th', { scope: 'col' }, 'example code'))), h('tbody', {}, errorRows)))));

    const tocList = h('ul');
    const tags = (doc.tags || []).map((t) => t.name);
    for (const tag of tags) {
      const tagInfo = doc.tags.find((t) => t.name === tag);
      const section = h('section.tag', { id: anchor('tag', tag), 'aria-labelledby': `${anchor('tag', tag)}-h` },
        h('h2', { id: `${anchor('tag', tag)}-h` }, tag), prose(tagInfo.description));
      const sub = h('ul');
      for (const [path, item] of Object.entries(doc.paths)) {
        for (const method of METHOD_ORDER) {
          const op = item[method];
          if (!op || !(op.tags || []).includes(tag)) continue;
          section.append(renderOperation(doc, path, method, op));
          sub.append(h('li', {}, h('a', { href: `#${opAnchor(method, path)}` },
            h(`span.method.m-${method}`, {}, method.toUpperCase()), ' ', path)));
        }
      }
      content.append(section);
      tocList.append(h('li', {}, h('a', { href: `#${anchor('tag', tag)}` }, tag), sub));
    }

    const schemas = (doc.components && doc.components.schemas) || {};
    const schemaSection = h('section', { id: 'schemas', 'aria-labelledby': 'schemas-h' }, h('h2', { id: 'schemas-h' }, 'Schemas'));
    for (const [name, schema] of Object.entries(schemas)) {
      schemaSection.append(h('section.schema', { id: anchor('schema', name) }, h('h3', {}, name),
        schema.description ? prose(schema.description) : null,
        schema.properties ? fieldsTable(schema) : h('p', {}, typeLabel(schema))));
    }
    content.append(schemaSection);
    tocList.append(h('li', {}, h('a', { href: '#auth' }, 'Authentication')),
      h('li', {}, h('a', { href: '#errors' }, 'Errors')), h('li', {}, h('a', { href: '#schemas' }, 'Schemas')));
    toc.append(h('h2.toc-title', {}, 'Contents'), tocList);
    document.body.dataset.state = 'ready';
    if (window.location.hash) {
      const target = document.getElementById(window.location.hash.slice(1));
      if (target) target.scrollIntoView();
    }
  }

  fetch('openapi.json', { headers: { Accept: 'application/json' } })
    .then((response) => {
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      return response.json();
    })
    .then(render)
    .catch((err) => {
      const loading = document.getElementById('loading');
      loading.textContent = `Could not load openapi.json (${err.message}).`;
      loading.setAttribute('role', 'alert');
      document.body.dataset.state = 'error';
    });
})();
