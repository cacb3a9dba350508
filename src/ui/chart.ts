// One guardrail drawn over time as SVG: the always-valid interval as a band, the estimate, the margin as a line, breach moments marked.
import { s } from './dom.js';
import { duration, formatEffect } from './format.js';
import type { History } from './types.js';

const W = 440;
const H = 104;
const PAD = { left: 58, right: 10, top: 10, bottom: 18 };

type Series = History['guardrails'][number];

const finite = (x: number | null | undefined): x is number => typeof x === 'number' && Number.isFinite(x);

/**
 * The y range: the margin, zero, every estimate, and the interval's bounds after its first quarter. The earliest bounds
 * are the widest (little evidence yet); letting them set the scale would flatten the part people read, so they are
 * clipped at the edge and the band is seen coming in.
 */
function yDomain(series: Series): [number, number] {
  const values: number[] = [0];
  for (const v of series.threshold) if (finite(v)) values.push(v);
  for (const v of series.estimate) if (finite(v)) values.push(v);
  const from = Math.floor(series.lower.length / 4);
  for (let i = from; i < series.lower.length; i++) {
    const lo = series.lower[i];
    const hi = series.upper[i];
    if (finite(lo)) values.push(lo);
    if (finite(hi)) values.push(hi);
  }
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (hi - lo < 1e-9) {
    hi += 0.01;
    lo -= 0.01;
  }
  const pad = (hi - lo) * 0.08;
  return [lo - pad, hi + pad];
}

/** Draws `series` over the history's times; `now` is the server's clock for the right edge. */
export function guardrailChart(history: History, series: Series, now: number, id: string): SVGElement {
  const t = history.t;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${series.name} over time`, class: `chart-${series.name}` });
  if (t.length === 0) return svg;
  const t0 = t[0]!;
  const t1 = Math.max(now, t[t.length - 1]!, t0 + 1000);
  const [y0, y1] = yDomain(series);
  const x = (ms: number) => PAD.left + ((ms - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v: number) => PAD.top + (1 - (v - y0) / (y1 - y0)) * (H - PAD.top - PAD.bottom);
  const clipId = `clip-${id}`;
  svg.appendChild(s('defs', {}, s('clipPath', { id: clipId }, s('rect', { x: PAD.left, y: PAD.top, width: W - PAD.left - PAD.right, height: H - PAD.top - PAD.bottom }))));
  const plot = s('g', { 'clip-path': `url(#${clipId})` });

  // Spans where the route was rolled back or waiting for a person.
  let spanStart = -1;
  for (let i = 0; i <= t.length; i++) {
    const marked = i < t.length && (history.phase[i] === 'rolled_back' || history.phase[i] === 'awaiting_approval');
    if (marked && spanStart < 0) spanStart = i;
    if (!marked && spanStart >= 0) {
      const end = i < t.length ? t[i]! : t1;
      const fill = history.phase[spanStart] === 'rolled_back' ? 'rgba(209,56,61,.08)' : 'rgba(201,138,4,.10)';
      plot.appendChild(s('rect', { class: `span-${history.phase[spanStart]}`, x: x(t[spanStart]!), y: PAD.top, width: Math.max(1, x(end) - x(t[spanStart]!)), height: H - PAD.top - PAD.bottom, fill }));
      spanStart = -1;
    }
  }

  // The band: one polygon per run of samples where both bounds are defined.
  let run: number[] = [];
  const flush = () => {
    if (run.length > 0) {
      const upper = run.map((i) => `${x(t[i]!).toFixed(1)},${y(series.upper[i]!).toFixed(1)}`);
      const lower = run.map((i) => `${x(t[i]!).toFixed(1)},${y(series.lower[i]!).toFixed(1)}`).reverse();
      if (run.length === 1) {
        const i = run[0]!;
        plot.appendChild(s('line', { class: 'band', x1: x(t[i]!), x2: x(t[i]!), y1: y(series.upper[i]!), y2: y(series.lower[i]!), stroke: 'rgba(47,111,223,.45)', 'stroke-width': 3 }));
      } else plot.appendChild(s('polygon', { class: 'band', points: [...upper, ...lower].join(' '), fill: 'rgba(47,111,223,.18)', stroke: 'rgba(47,111,223,.35)', 'stroke-width': 0.6 }));
    }
    run = [];
  };
  for (let i = 0; i < t.length; i++) {
    if (finite(series.lower[i]) && finite(series.upper[i])) run.push(i);
    else flush();
  }
  flush();

  plot.appendChild(s('line', { x1: PAD.left, x2: W - PAD.right, y1: y(0), y2: y(0), stroke: '#c3cad4', 'stroke-width': 0.8 }));
  const path = (values: (number | null)[], attrs: Record<string, string | number>) => {
    let d = '';
    let pen = false;
    for (let i = 0; i < t.length; i++) {
      const v = values[i];
      if (!finite(v)) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${x(t[i]!).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    }
    if (d !== '') plot.appendChild(s('path', { d, fill: 'none', ...attrs }));
  };
  path(series.threshold, { class: 'margin', stroke: '#d1383d', 'stroke-width': 1.3, 'stroke-dasharray': '5 3' });
  path(series.estimate, { class: 'estimate', stroke: '#1b2430', 'stroke-width': 1.4 });
  svg.appendChild(plot);

  for (const breach of history.breaches) {
    if (breach.guardrail !== series.name || breach.at < t0) continue;
    const bx = x(breach.at);
    svg.appendChild(s('line', { class: 'breach', x1: bx, x2: bx, y1: PAD.top, y2: H - PAD.bottom, stroke: '#d1383d', 'stroke-width': 1.6 }));
    svg.appendChild(s('text', { x: Math.min(bx + 3, W - PAD.right - 34), y: PAD.top + 9, style: 'fill:#d1383d;font-weight:600' }, 'breach'));
  }

  // Axes: the range on the left, the margin's value at its line, the time span below.
  svg.appendChild(s('text', { x: 4, y: PAD.top + 8 }, formatEffect(series.name, y1)));
  svg.appendChild(s('text', { x: 4, y: H - PAD.bottom }, formatEffect(series.name, y0)));
  const lastThreshold = [...series.threshold].reverse().find(finite);
  if (lastThreshold !== undefined && lastThreshold >= y0 && lastThreshold <= y1) {
    const above = y(lastThreshold) - 3 > PAD.top + 8;
    svg.appendChild(s('text', { x: W - PAD.right, y: above ? y(lastThreshold) - 3 : y(lastThreshold) + 10, 'text-anchor': 'end', style: 'fill:#d1383d' }, series.kind === 'breaker' ? 'ceiling' : 'margin'));
  }
  svg.appendChild(s('text', { x: PAD.left, y: H - 4 }, `−${duration(t1 - t0)}`));
  svg.appendChild(s('text', { x: W - PAD.right - 20, y: H - 4 }, 'now'));
  return svg;
}
