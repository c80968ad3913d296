/** Report charts: vega-lite specs compiled and rendered to SVG on the server (no browser, no canvas). */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

const COLORS = { domain: ['robust', 'clean'], range: ['#1f6feb', '#d1242f'] };

/** Renders a vega-lite spec to an SVG string. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** One point of a metric curve. */
export interface CurvePoint {
  encoder: string;
  /** ε in 1/255 units, the way budgets are usually quoted. */
  eps255: number;
  value: number;
  /** Optional series name within an encoder, e.g. "attacked" vs "clean". */
  series?: string;
}

/** A metric against ε, one line per encoder (and per series, dashed for the second). */
export function curveSpec(
  title: string,
  yTitle: string,
  points: CurvePoint[],
  yDomain?: [number, number],
): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, anchor: 'start', fontSize: 13 },
    width: 300,
    height: 180,
    data: { values: points },
    mark: { type: 'line', point: true, strokeWidth: 2 },
    encoding: {
      x: { field: 'eps255', type: 'quantitative', title: 'ε (× 1/255)', axis: { tickMinStep: 1 } },
      y: {
        field: 'value',
        type: 'quantitative',
        title: yTitle,
        ...(yDomain ? { scale: { domain: yDomain } } : {}),
      },
      color: { field: 'encoder', type: 'nominal', scale: COLORS, title: 'encoder' },
      strokeDash: { field: 'series', type: 'nominal', title: null, legend: points.some((p) => p.series) ? {} : null },
    },
    config: { font: 'system-ui, sans-serif', view: { stroke: '#d0d7de' } },
  };
}

/** A headline number across past audits, one line per encoder. */
export function trendSpec(title: string, points: { encoder: string; date: string; value: number }[]): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, anchor: 'start', fontSize: 13 },
    width: 640,
    height: 160,
    data: { values: points },
    mark: { type: 'line', point: true, strokeWidth: 2 },
    encoding: {
      x: { field: 'date', type: 'temporal', title: 'audit' },
      y: { field: 'value', type: 'quantitative', title: 'overlap@k', scale: { domain: [0, 1] } },
      color: { field: 'encoder', type: 'nominal', scale: COLORS, title: 'encoder' },
    },
    config: { font: 'system-ui, sans-serif', view: { stroke: '#d0d7de' } },
  };
}
