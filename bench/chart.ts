/**
 * A hand-written SVG: delivery latency percentiles (log scale) against delivered messages/s,
 * one colour per store, one dash style per percentile.
 */
export interface Series {
  label: string;
  colour: string;
  points: { x: number; p50: number; p90: number; p99: number }[];
}

const W = 760;
const H = 440;
const M = { left: 70, right: 170, top: 40, bottom: 55 };

export function latencyChart(title: string, series: Series[]): string {
  const all = series.flatMap((s) => s.points);
  const xMax = niceCeil(Math.max(1, ...all.map((p) => p.x)));
  const yMin = 0.1;
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(1, ...all.map((p) => p.p99))));
  const px = (x: number) => M.left + (x / xMax) * (W - M.left - M.right);
  const py = (y: number) => {
    const t = (Math.log10(Math.max(y, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin));
    return H - M.bottom - t * (H - M.top - M.bottom);
  };
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - M.right / 2}" y="22" text-anchor="middle" font-size="14">${escape(title)}</text>`,
  ];
  for (let k = 0; k <= 5; k++) {
    const x = (xMax / 5) * k;
    out.push(`<line x1="${px(x)}" y1="${M.top}" x2="${px(x)}" y2="${H - M.bottom}" stroke="#eee"/>`);
    out.push(`<text x="${px(x)}" y="${H - M.bottom + 16}" text-anchor="middle">${Math.round(x)}</text>`);
  }
  for (let y = yMin; y <= yMax * 1.001; y *= 10) {
    out.push(`<line x1="${M.left}" y1="${py(y)}" x2="${W - M.right}" y2="${py(y)}" stroke="#eee"/>`);
    out.push(`<text x="${M.left - 6}" y="${py(y) + 4}" text-anchor="end">${y >= 1 ? Math.round(y) : y.toFixed(1)}</text>`);
  }
  out.push(`<rect x="${M.left}" y="${M.top}" width="${W - M.left - M.right}" height="${H - M.top - M.bottom}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${(M.left + W - M.right) / 2}" y="${H - 15}" text-anchor="middle">delivered messages per second</text>`);
  out.push(`<text transform="translate(18 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">delivery latency, ms (log scale)</text>`);
  const dashes: Record<'p50' | 'p90' | 'p99', string> = { p50: '', p90: '6 3', p99: '2 3' };
  let legendY = M.top + 10;
  for (const s of series) {
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    for (const key of ['p50', 'p90', 'p99'] as const) {
      const d = pts.map((p) => `${px(p.x).toFixed(1)},${py(p[key]).toFixed(1)}`).join(' ');
      out.push(`<polyline points="${d}" fill="none" stroke="${s.colour}" stroke-width="2" stroke-dasharray="${dashes[key]}"/>`);
      for (const p of pts) out.push(`<circle cx="${px(p.x).toFixed(1)}" cy="${py(p[key]).toFixed(1)}" r="2.5" fill="${s.colour}"/>`);
      out.push(`<line x1="${W - M.right + 12}" y1="${legendY}" x2="${W - M.right + 40}" y2="${legendY}" stroke="${s.colour}" stroke-width="2" stroke-dasharray="${dashes[key]}"/>`);
      out.push(`<text x="${W - M.right + 46}" y="${legendY + 4}">${escape(s.label)} ${key}</text>`);
      legendY += 18;
    }
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function niceCeil(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
}
