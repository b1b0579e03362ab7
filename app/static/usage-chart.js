// The usage panel: GET /usage summed per UTC day, drawn as SVG bars with a summary and a table.
// SVG rather than canvas: each bar is an element with its day and value, readable by tests and
// styled by chat.css (light and dark) without any inline style.
import { unavailable } from './api.js';
import { $, el } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 300;
const LEFT = 4;
const RIGHT = 4;
const PANELS = [
  { key: 'tokens', label: 'Tokens', top: 14, height: 62 },
  { key: 'requests', label: 'Requests', top: 96, height: 36 },
];
const HEIGHT = 152;
const DAYS = 14;

/** The last `days` UTC days ending at `today` (YYYY-MM-DD), each with its rows summed over models. */
export function usageByDay(rows, days, today) {
  const end = Date.parse(`${today}T00:00:00Z`);
  const out = [];
  const index = new Map();
  for (let i = days - 1; i >= 0; i -= 1) {
    const day = new Date(end - i * 86400000).toISOString().slice(0, 10);
    const entry = { day, requests: 0, tokens: 0 };
    index.set(day, entry);
    out.push(entry);
  }
  for (const row of rows || []) {
    const entry = index.get(row.day);
    if (!entry) continue;
    entry.requests += Number(row.requests) || 0;
    entry.tokens += Number(row.total_tokens) || 0;
  }
  return out;
}

/** Today's UTC day, as /usage names days. */
export function utcToday(now = new Date()) {
  return now.toISOString().slice(0, 10);
}

/** A short label for a YYYY-MM-DD day, e.g. "5 Dec". */
export function dayLabel(day) {
  return new Date(`${day}T00:00:00Z`).toLocaleDateString(undefined, { day: 'numeric', month: 'short', timeZone: 'UTC' });
}

function node(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** Draw `series` (from usageByDay) into `svg`, replacing what was there. */
export function drawUsage(svg, series) {
  svg.replaceChildren();
  svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
  const slot = (WIDTH - LEFT - RIGHT) / Math.max(series.length, 1);
  const barWidth = Math.max(2, slot * 0.7);
  for (const panel of PANELS) {
    const max = Math.max(0, ...series.map((d) => d[panel.key]));
    const base = panel.top + panel.height;
    svg.append(node('text', { x: LEFT, y: panel.top - 4, class: 'chart-label' },
      `${panel.label}${max ? ` (max ${max.toLocaleString()})` : ''}`));
    svg.append(node('line', { x1: LEFT, x2: WIDTH - RIGHT, y1: base, y2: base, class: 'chart-axis' }));
    series.forEach((d, i) => {
      const value = d[panel.key];
      if (!value) return;
      // A day with any traffic keeps a visible bar, however small beside the busiest day.
      const height = Math.max(2, Math.round((value / max) * panel.height));
      const bar = node('rect', {
        x: (LEFT + i * slot + (slot - barWidth) / 2).toFixed(2), y: base - height,
        width: barWidth.toFixed(2), height, rx: 1.5, class: `bar bar-${panel.key}`,
        'data-day': d.day, 'data-value': value,
      });
      bar.append(node('title', {}, `${dayLabel(d.day)}: ${d.requests.toLocaleString()} requests, `
        + `${d.tokens.toLocaleString()} tokens`));
      svg.append(bar);
    });
  }
  if (series.length) {
    const y = HEIGHT - 4;
    svg.append(node('text', { x: LEFT, y, class: 'chart-day' }, dayLabel(series[0].day)));
    svg.append(node('text', { x: WIDTH - RIGHT, y, class: 'chart-day', 'text-anchor': 'end' },
      dayLabel(series[series.length - 1].day)));
  }
}

/** Wire the panel to `call` (a jsonCaller); returns {load}. */
export function usagePanel({ call }) {
  const ui = { chart: $('usage-chart'), summary: $('usage-summary'), rows: $('usage-rows'), refresh: $('usage-refresh') };

  async function load() {
    const result = await call(`usage?days=${DAYS}`);
    const series = usageByDay(result.ok ? result.data.data : [], DAYS, utcToday());
    drawUsage(ui.chart, series);
    const busy = series.filter((d) => d.requests || d.tokens);
    // The same numbers as a table, for those who cannot see the chart.
    ui.rows.replaceChildren(...busy.map((d) => {
      const row = el('tr');
      const day = el('th', null, dayLabel(d.day));
      day.scope = 'row';
      row.append(day, el('td', null, d.requests.toLocaleString()), el('td', null, d.tokens.toLocaleString()));
      return row;
    }));
    if (!result.ok) {
      ui.summary.textContent = unavailable('usage', result);
    } else if (!busy.length) {
      ui.summary.textContent = `No requests in these ${DAYS} days yet.`;
    } else {
      const requests = busy.reduce((n, d) => n + d.requests, 0);
      const tokens = busy.reduce((n, d) => n + d.tokens, 0);
      ui.summary.textContent = `${requests.toLocaleString()} ${requests === 1 ? 'request' : 'requests'}, `
        + `${tokens.toLocaleString()} tokens on ${busy.length} ${busy.length === 1 ? 'day' : 'days'}.`;
    }
    ui.chart.dataset.state = result.ok ? 'ready' : 'error';
  }

  ui.refresh.addEventListener('click', load);
  return { load };
}
