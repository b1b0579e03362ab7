// Model replies as formatted text: a small Markdown subset turned into DOM nodes.
// Every node is made with createElement and every piece of text goes in as a text node, so nothing a
// model writes can become markup: HTML and entities stay visible as typed, and a link is made only
// for an http(s) URL. The page re-renders a reply on every streamed piece, so unchanged top-level
// blocks are kept as they are and only the growing end is rebuilt.

const PLACEHOLDER = /\[(?:EMAIL|PHONE|CARD|SSN|IBAN|IP|SECRET)\]/g;
const PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/;
const WORD_CHAR = /[\p{L}\p{N}]/u;

const FENCE_OPEN = /^( {0,3})(`{3,}|~{3,})(.*)$/;
const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const ITEM = /^( {0,3})([-+*]|\d{1,9}[.)])(?:([ \t]+)(.*))?$/;
const BLANK = /^[ \t]*$/;
const MAX_LABEL = 1000;

const blockCache = new WeakMap();

/** Render `source` into `container`, reusing the nodes of blocks that did not change. */
export function renderMarkdown(container, source, options = {}) {
  const opts = { placeholders: Boolean(options.placeholders) };
  const key = opts.placeholders ? 'marked' : 'plain';
  const previous = blockCache.get(container);
  const reusable = previous && previous.key === key ? previous.blocks : [];
  const blocks = splitBlocks(toLines(source)).map((block, i) => {
    const old = reusable[i];
    return old && old.src === block.src ? old : { src: block.src, node: block.build(opts) };
  });
  const children = container.children;
  let same = 0;
  while (same < blocks.length && children[same] === blocks[same].node) same += 1;
  while (children.length > same) children[children.length - 1].remove();
  for (let i = same; i < blocks.length; i += 1) container.append(blocks[i].node);
  blockCache.set(container, { key, blocks });
}

/** A fragment holding the rendered `source` (no caching): for one-off rendering and tests. */
export function markdownFragment(source, options = {}) {
  const holder = document.createElement('div');
  renderMarkdown(holder, source, options);
  const fragment = document.createDocumentFragment();
  fragment.append(...holder.childNodes);
  return fragment;
}

function toLines(source) {
  return String(source).replace(/\t/g, '    ').split(/\r\n|\r|\n/);
}

function indentOf(line) {
  return line.length - line.trimStart().length;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// --- blocks ---------------------------------------------------------------------------------

// Each block knows its own source lines, so an unchanged block renders the same and can be reused.
function splitBlocks(lines) {
  const blocks = [];
  let i = 0;
  while (i < lines.length) {
    if (BLANK.test(lines[i])) { i += 1; continue; }
    const start = i;
    const block = readBlock(lines, i);
    i = block.end;
    blocks.push({ src: lines.slice(start, i).join('\n'), build: block.build });
  }
  return blocks;
}

function readBlock(lines, i) {
  const line = lines[i];
  const fence = FENCE_OPEN.exec(line);
  if (fence && !(fence[2][0] === '`' && fence[3].includes('`'))) return readFence(lines, i, fence);
  const heading = HEADING.exec(line);
  if (heading) {
    const level = Math.min(heading[1].length + 2, 6);
    return { end: i + 1, build: (opts) => inlineInto(el(`h${level}`, 'md-heading'), heading[2] || '', opts) };
  }
  if (RULE.test(line)) return { end: i + 1, build: () => el('hr') };
  if (QUOTE.test(line)) return readQuote(lines, i);
  const item = ITEM.exec(line);
  if (item) return readList(lines, i);
  return readParagraph(lines, i);
}

function readFence(lines, i, open) {
  const indent = open[1].length;
  const marker = open[2];
  const language = open[3].trim().split(/\s+/)[0] || '';
  const close = new RegExp(`^ {0,3}${marker[0] === '`' ? '`' : '~'}{${marker.length},}[ \\t]*$`);
  const body = [];
  let j = i + 1;
  // An unclosed fence runs to the end: that is how a code block looks while it is still streaming.
  while (j < lines.length && !close.test(lines[j])) {
    const line = lines[j];
    body.push(line.slice(Math.min(indent, indentOf(line))));
    j += 1;
  }
  const end = j < lines.length ? j + 1 : j;
  return { end, build: () => codeBlock(body.join('\n'), language) };
}

function codeBlock(code, language) {
  const wrap = el('div', 'code-block');
  const head = el('div', 'code-head');
  head.append(el('span', 'code-lang', language || 'code'));
  const copy = el('button', 'copy-code');
  copy.type = 'button';
  // Heard as "Copy python code"; seen as "Copy" (then "Copied"), so the visible word stays in the name.
  copy.append(el('span', 'copy-label', 'Copy'), el('span', 'sr-only', language ? ` ${language} code` : ' code'));
  head.append(copy);
  const pre = el('pre');
  // A long line scrolls sideways; a keyboard user must be able to reach and scroll it too.
  pre.tabIndex = 0;
  const codeEl = el('code', null, code);
  if (language) codeEl.dataset.lang = language;
  pre.append(codeEl);
  wrap.append(head, pre);
  return wrap;
}

function readQuote(lines, i) {
  const inner = [];
  let j = i;
  while (j < lines.length) {
    const match = QUOTE.exec(lines[j]);
    if (!match) break;
    inner.push(match[1]);
    j += 1;
  }
  return { end: j, build: (opts) => blocksInto(el('blockquote'), inner, opts) };
}

function blocksInto(parent, lines, opts) {
  for (const block of splitBlocks(lines)) parent.append(block.build(opts));
  return parent;
}

function listKind(marker) {
  return /\d/.test(marker) ? `ol${marker.slice(-1)}` : `ul${marker}`;
}

// A list item owns the lines indented to its content column, nested lists indented past its marker,
// blank lines followed by such lines, and lazy continuation lines of its paragraph.
function readList(lines, i) {
  const first = ITEM.exec(lines[i]);
  const kind = listKind(first[2]);
  const ordered = kind.startsWith('ol');
  const startNumber = ordered ? parseInt(first[2], 10) : 1;
  const items = [];
  let j = i;
  while (j < lines.length) {
    const head = ITEM.exec(lines[j]);
    if (!head || listKind(head[2]) !== kind || RULE.test(lines[j])) break;
    const markerIndent = head[1].length;
    const gap = head[3] ? head[3].length : 1;
    const contentIndent = markerIndent + head[2].length + (gap > 4 ? 1 : gap);
    const body = [head[4] || ''];
    j += 1;
    while (j < lines.length) {
      const line = lines[j];
      if (BLANK.test(line)) {
        let k = j;
        while (k < lines.length && BLANK.test(lines[k])) k += 1;
        if (k < lines.length && indentOf(lines[k]) >= contentIndent) {
          for (; j < k; j += 1) body.push('');
          continue;
        }
        break;
      }
      const indent = indentOf(line);
      if (indent >= contentIndent || (indent > markerIndent && ITEM.test(line.trimStart()))) {
        body.push(line.slice(Math.min(indent, contentIndent)));
        j += 1;
        continue;
      }
      if (ITEM.test(line)) break;
      if (!BLANK.test(body[body.length - 1]) && !startsBlock(line)) {
        body.push(line.trimStart());
        j += 1;
        continue;
      }
      break;
    }
    items.push(body);
    // Blank lines between items keep the list going when another item of the same kind follows.
    let k = j;
    while (k < lines.length && BLANK.test(lines[k])) k += 1;
    const next = k < lines.length ? ITEM.exec(lines[k]) : null;
    if (next && listKind(next[2]) === kind && next[1].length <= 3 && !RULE.test(lines[k])) j = k;
  }
  return {
    end: j,
    build: (opts) => {
      const list = el(ordered ? 'ol' : 'ul');
      if (ordered && startNumber !== 1) list.start = startNumber;
      for (const body of items) list.append(blocksInto(el('li'), body, opts));
      return list;
    },
  };
}

function startsBlock(line) {
  if (FENCE_OPEN.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line)) return true;
  const item = ITEM.exec(line);
  // As in CommonMark, a list interrupts a paragraph only with content, and a numbered one only at 1.
  return Boolean(item && item[4] && item[4].trim() && (!/\d/.test(item[2]) || parseInt(item[2], 10) === 1));
}

function readParagraph(lines, i) {
  const text = [lines[i].trim()];
  let j = i + 1;
  while (j < lines.length && !BLANK.test(lines[j]) && !startsBlock(lines[j])) {
    text.push(lines[j].trim());
    j += 1;
  }
  return { end: j, build: (opts) => inlineInto(el('p'), text.join('\n'), opts) };
}

// --- inline ---------------------------------------------------------------------------------

function inlineInto(parent, text, opts) {
  new InlineParser(text, opts).into(parent);
  return parent;
}

class InlineParser {
  constructor(text, opts) {
    this.text = text;
    this.opts = opts;
    // Where a search for a closing delimiter already failed: later openers of that kind fail too,
    // which keeps a reply full of unmatched * or ` linear instead of quadratic.
    this.dead = new Map();
  }

  into(parent, from = 0, to = this.text.length, inLink = false) {
    const { text } = this;
    let plain = '';
    const flush = () => {
      if (plain) appendText(parent, plain, this.opts);
      plain = '';
    };
    let i = from;
    while (i < to) {
      const c = text[i];
      if (c === '\\' && i + 1 < to && PUNCTUATION.test(text[i + 1])) {
        plain += text[i + 1];
        i += 2;
        continue;
      }
      if (c === '\n') {
        flush();
        parent.append(el('br'));
        i += 1;
        continue;
      }
      if (c === '`') {
        const run = runLength(text, i, '`', to);
        const close = this.findBackticks(i + run, run, to);
        if (close < 0) {
          plain += text.slice(i, i + run);
          i += run;
          continue;
        }
        flush();
        let code = text.slice(i + run, close).replace(/\n/g, ' ');
        if (code.length > 2 && code.startsWith(' ') && code.endsWith(' ') && code.trim()) code = code.slice(1, -1);
        parent.append(el('code', null, code));
        i = close + run;
        continue;
      }
      if (c === '[' && !inLink) {
        const link = this.link(i, to);
        if (link) {
          flush();
          if (link.href) {
            const a = anchor(link.href);
            this.into(a, link.labelStart, link.labelEnd, true);
            parent.append(a);
          } else {
            // Not http(s): the whole construct stays visible as the text the model wrote.
            plain += text.slice(i, link.end);
          }
          i = link.end;
          continue;
        }
      }
      if (c === '<' && !inLink) {
        const auto = /^<(https?:\/\/[^\s<>]+)>/i.exec(text.slice(i, to));
        const href = auto && safeHref(auto[1]);
        if (href) {
          flush();
          parent.append(anchor(href, auto[1]));
          i += auto[0].length;
          continue;
        }
      }
      if ((c === 'h' || c === 'H') && !inLink && (i === from || /[\s(*_~]/.test(text[i - 1]))) {
        const bare = bareUrl(text.slice(i, to));
        const href = bare && safeHref(bare);
        if (href) {
          flush();
          parent.append(anchor(href, bare));
          i += bare.length;
          continue;
        }
      }
      if (c === '*' || c === '_' || c === '~') {
        const span = this.emphasis(i, to);
        if (span) {
          flush();
          const node = el(span.tag);
          this.into(node, span.innerStart, span.innerEnd, inLink);
          parent.append(node);
          i = span.end;
          continue;
        }
        const run = runLength(text, i, c, to);
        plain += text.slice(i, i + run);
        i += run;
        continue;
      }
      plain += c;
      i += 1;
    }
    flush();
  }

  findBackticks(from, run, to) {
    const key = `\`${run}@${to}`;
    if (this.dead.has(key) && from >= this.dead.get(key)) return -1;
    const { text } = this;
    let j = from;
    while (j < to) {
      if (text[j] === '`') {
        const length = runLength(text, j, '`', to);
        if (length === run) return j;
        j += length;
      } else {
        j += 1;
      }
    }
    this.dead.set(key, Math.min(from, this.dead.get(key) ?? Infinity));
    return -1;
  }

  // [label](destination "optional title")
  link(i, to) {
    const { text } = this;
    // A label longer than this is not a label; the bound keeps a reply full of [ linear.
    const limit = Math.min(to, i + MAX_LABEL);
    let depth = 0;
    let j = i;
    for (; j < limit; j += 1) {
      const c = text[j];
      if (c === '\\') { j += 1; continue; }
      if (c === '`') {
        const run = runLength(text, j, '`', to);
        const close = this.findBackticks(j + run, run, to);
        j = (close < 0 ? j + run : close + run) - 1;
        continue;
      }
      if (c === '[') depth += 1;
      else if (c === ']' && --depth === 0) break;
    }
    if (j >= limit || text[j + 1] !== '(') return null;
    const labelEnd = j;
    let k = j + 2;
    while (k < to && /[ \t]/.test(text[k])) k += 1;
    let destination = '';
    if (text[k] === '<') {
      const close = text.indexOf('>', k);
      if (close < 0 || close >= to || text.slice(k + 1, close).includes('\n')) return null;
      destination = text.slice(k + 1, close);
      k = close + 1;
    } else {
      let parens = 0;
      const start = k;
      for (; k < to; k += 1) {
        const c = text[k];
        if (/\s/.test(c)) break;
        if (c === '\\' && k + 1 < to) { k += 1; continue; }
        if (c === '(') parens += 1;
        else if (c === ')') {
          if (parens === 0) break;
          parens -= 1;
        }
      }
      destination = text.slice(start, k);
    }
    while (k < to && /[ \t\n]/.test(text[k])) k += 1;
    if (text[k] === '"' || text[k] === "'") {
      const close = text.indexOf(text[k], k + 1);
      if (close < 0 || close >= to) return null;
      k = close + 1;
      while (k < to && /[ \t\n]/.test(text[k])) k += 1;
    }
    if (text[k] !== ')') return null;
    return { labelStart: i + 1, labelEnd, end: k + 1, href: safeHref(destination) };
  }

  // *em*, _em_, **strong**, __strong__, ~~del~~; a delimiter run opens only before a non-space, and
  // _ never opens or closes inside a word (snake_case_names stay as written).
  emphasis(i, to) {
    const { text } = this;
    const c = text[i];
    const run = runLength(text, i, c, to);
    const after = text[i + run];
    if (after === undefined || i + run >= to || /\s/.test(after)) return null;
    if (c === '_' && i > 0 && WORD_CHAR.test(text[i - 1])) return null;
    const attempts = c === '~' ? (run === 2 ? [[2, 'del']] : []) : run >= 2 ? [[2, 'strong'], [1, 'em']] : [[1, 'em']];
    for (const [size, tag] of attempts) {
      const close = this.closer(c, size, i + size, to);
      if (close >= 0 && close > i + size) return { tag, innerStart: i + size, innerEnd: close, end: close + size };
    }
    return null;
  }

  closer(c, size, from, to) {
    const key = `${c}${size}@${to}`;
    if (this.dead.has(key) && from >= this.dead.get(key)) return -1;
    const { text } = this;
    let j = from;
    while (j < to) {
      const ch = text[j];
      if (ch === '\\') { j += 2; continue; }
      if (ch === '`') {
        const run = runLength(text, j, '`', to);
        const close = this.findBackticks(j + run, run, to);
        j = close < 0 ? j + run : close + run;
        continue;
      }
      if (ch !== c) { j += 1; continue; }
      const run = runLength(text, j, c, to);
      const before = text[j - 1];
      const next = text[j + run];
      const rightFlanking = before !== undefined && !/\s/.test(before)
        && !(c === '_' && next !== undefined && WORD_CHAR.test(next));
      // A single * closes an em only as a run of one; a longer run belongs to a nested strong.
      if (rightFlanking && (size === 2 ? run >= 2 : run === 1 || run >= 3)) return j + run - size;
      j += run;
    }
    this.dead.set(key, Math.min(from, this.dead.get(key) ?? Infinity));
    return -1;
  }
}

function runLength(text, i, c, to) {
  let j = i;
  while (j < to && text[j] === c) j += 1;
  return j - i;
}

function bareUrl(text) {
  const match = /^https?:\/\/[^\s<>"]+/i.exec(text);
  if (!match) return null;
  let url = match[0].replace(/[.,;:!?'*_~]+$/, '');
  // A closing parenthesis belongs to the URL only when it closes one the URL opened.
  while (url.endsWith(')') && (url.match(/\)/g) || []).length > (url.match(/\(/g) || []).length) {
    url = url.slice(0, -1).replace(/[.,;:!?'*_~]+$/, '');
  }
  return /^https?:\/\/[^/?#]/i.test(url) ? url : null;
}

/** The URL as an absolute http(s) href, or null for anything else (javascript:, data:, relative…). */
export function safeHref(raw) {
  let url;
  try {
    url = new URL(String(raw).trim());
  } catch (_) {
    return null;
  }
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
}

function anchor(href, text) {
  const a = el('a', null, text);
  a.href = href;
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  return a;
}

function appendText(parent, text, opts) {
  if (!opts.placeholders) {
    parent.append(document.createTextNode(text));
    return;
  }
  let last = 0;
  for (const match of text.matchAll(PLACEHOLDER)) {
    parent.append(text.slice(last, match.index));
    const mark = el('mark', 'placeholder', match[0]);
    mark.title = `redacted ${match[0].slice(1, -1).toLowerCase()}`;
    parent.append(mark);
    last = match.index + match[0].length;
  }
  parent.append(text.slice(last));
}
