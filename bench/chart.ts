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

/** One figure of a ratio chart: pollgate ÷ its peer for each store (below 1: pollgate wins). */
export interface RatioRow {
  label: string;
  memory?: number;
  redis?: number;
}

/**
 * Horizontal bars of pollgate ÷ best peer per figure on a log scale, the memory store's and the
 * Redis store's side by side, with the 1.0 line where pollgate and the peer are even.
 */
export function ratioChart(title: string, rows: RatioRow[]): string {
  const w = 760;
  const bar = 12;
  const left = 300;
  const right = 40;
  const top = 60;
  const rowH = 2 * bar + 12;
  const h = top + rows.length * rowH + 40;
  const lo = 0.25;
  const hi = 8;
  const px = (v: number) => left + ((Math.log(Math.min(Math.max(v, lo), hi)) - Math.log(lo)) / (Math.log(hi) - Math.log(lo))) * (w - left - right);
  const colours = { memory: '#1f77b4', redis: '#d62728' } as const;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${w}" height="${h}" fill="white"/>`,
    `<text x="${w / 2}" y="22" text-anchor="middle" font-size="14">${escape(title)}</text>`,
    `<rect x="${left + 10}" y="32" width="12" height="10" fill="${colours.memory}"/><text x="${left + 28}" y="41">memory store ÷ better of Socket.IO polling and Faye</text>`,
    `<rect x="${left + 10}" y="46" width="12" height="10" fill="${colours.redis}"/><text x="${left + 28}" y="55">Redis store ÷ Socket.IO + redis-adapter</text>`,
  ];
  for (const t of [0.25, 0.5, 1, 2, 4, 8]) {
    out.push(`<line x1="${px(t)}" y1="${top}" x2="${px(t)}" y2="${h - 30}" stroke="${t === 1 ? '#333' : '#eee'}" stroke-width="${t === 1 ? 1.5 : 1}"/>`);
    out.push(`<text x="${px(t)}" y="${h - 14}" text-anchor="middle">${t}x</text>`);
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH + 4;
    out.push(`<text x="${left - 8}" y="${y + bar + 4}" text-anchor="end">${escape(r.label)}</text>`);
    (['memory', 'redis'] as const).forEach((store, k) => {
      const v = r[store];
      if (v === undefined) return;
      const y0 = y + k * bar;
      const x0 = px(1);
      const x1 = px(v);
      out.push(`<rect x="${Math.min(x0, x1).toFixed(1)}" y="${y0}" width="${Math.abs(x1 - x0).toFixed(1)}" height="${bar - 2}" fill="${colours[store]}"/>`);
      out.push(`<text x="${(v >= 1 ? x1 + 4 : x1 - 4).toFixed(1)}" y="${y0 + bar - 3}" text-anchor="${v >= 1 ? 'start' : 'end'}" font-size="10">${v}x</text>`);
    });
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
