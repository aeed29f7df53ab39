// The live charts (uPlot): a sample of both replicas every PERIOD ms, the
// last WINDOW samples shown. Series by slot (A, B), the colours the replica
// panels use.

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

const WINDOW = 240;
const A = "#2563eb", B = "#d97706", ONE = "#15803d";

interface Chart { plot: uPlot; data: number[][] }

/** 1234567 as "1.2M": axis labels that fit. */
export function compact(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(2)}`;
}

function chart(el: HTMLElement, series: { label: string; stroke: string }[]): Chart {
  const data: number[][] = [[], ...series.map(() => [])];
  const width = Math.max(260, el.clientWidth || 300);
  const plot = new uPlot({
    width, height: 150, legend: { show: true, live: false }, cursor: { show: false },
    scales: { x: { time: true } },
    series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.stroke, width: 2, spanGaps: false, points: { show: false } }))],
    axes: [{ space: 60 }, { size: 50, values: (_u, vals) => vals.map(compact) }],
  }, data as uPlot.AlignedData, el);
  return { plot, data };
}

/** One sample: values per series, null where a replica has nothing to show. */
export interface Sample {
  icount: [number | null, number | null];
  lag: number | null;
  bandwidth: number | null;
  held: number | null;
  mips: [number | null, number | null];
}

export class Charts {
  private readonly charts: Record<string, Chart>;

  constructor(root: Document) {
    const el = (id: string) => root.getElementById(id)!;
    this.charts = {
      icount: chart(el("chart-icount"), [{ label: "A", stroke: A }, { label: "B", stroke: B }]),
      lag: chart(el("chart-lag"), [{ label: "lag", stroke: ONE }]),
      bw: chart(el("chart-bw"), [{ label: "KiB/s", stroke: ONE }]),
      held: chart(el("chart-held"), [{ label: "held", stroke: ONE }]),
      mips: chart(el("chart-mips"), [{ label: "A", stroke: A }, { label: "B", stroke: B }]),
    };
  }

  add(tSec: number, s: Sample): void {
    const push = (c: Chart, values: (number | null)[]) => {
      c.data[0]!.push(tSec);
      values.forEach((v, i) => c.data[i + 1]!.push(v as number));
      if (c.data[0]!.length > WINDOW) for (const d of c.data) d.shift();
      c.plot.setData(c.data as uPlot.AlignedData);
    };
    push(this.charts.icount!, s.icount);
    push(this.charts.lag!, [s.lag]);
    push(this.charts.bw!, [s.bandwidth]);
    push(this.charts.held!, [s.held]);
    push(this.charts.mips!, s.mips);
  }

  clear(): void {
    for (const c of Object.values(this.charts)) {
      for (const d of c.data) d.length = 0;
      c.plot.setData(c.data as uPlot.AlignedData);
    }
  }
}
