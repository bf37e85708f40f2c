/**
 * Summarises a V8 .cpuprofile: self time by function and by area (our code per file, each
 * dependency, Node internals, GC, idle), so docs/PERFORMANCE.md can say where the time goes.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  /** Monotonic clock (µs) of the profile's start: timeDeltas count from it. */
  startTime: number;
}

export interface ProfileSummary {
  totalMs: number;
  busyMs: number;
  areas: { area: string; pct: number }[];
  /** Busy µs by area, every area (not only the top ones). */
  areaUs: Record<string, number>;
  functions: { fn: string; where: string; pct: number }[];
}

/**
 * The folder this build was compiled to (dist/, whose bench/ holds this file), as profiles name
 * it: a build copied elsewhere for a side-by-side run (dist-before/, say) is still recognised.
 */
const BUILD_ROOT = new URL('..', import.meta.url).href;

/** `root`: the build's folder as a file: URL ending in '/' (this build's by default). */
export function areaOf(url: string, fn: string, root = BUILD_ROOT): string {
  if (fn === '(idle)') return '(idle)';
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(program)') return '(program: native, not attributed)';
  if (!url) return `native: ${fn || '(anonymous)'}`;
  const dep = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (dep) return dep[1]!;
  // lib/... and bench/... of the build, whatever its folder is called.
  if (url.startsWith(root) && url.endsWith('.js')) return url.slice(root.length, -3);
  const ours = /dist\/(lib\/.*)\.js$/.exec(url);
  if (ours) return ours[1]!;
  if (url.startsWith('node:internal/')) return `node:internal/${url.slice(14).split('/')[0]!.replace(/\.js$/, '')}`;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  return url;
}

/**
 * Self time (µs) of each node, from the sample stream; with `window` (monotonic µs, the clock of
 * process.hrtime), only the samples taken inside it.
 */
export function summarizeProfile(path: string, top = 25, window?: { fromUs: number; toUs: number }): ProfileSummary {
  const prof = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let at = prof.startTime;
  prof.samples.forEach((id, i) => {
    const delta = prof.timeDeltas[i] ?? 0;
    at += delta;
    if (window && (at < window.fromUs || at > window.toUs)) return;
    self.set(id, (self.get(id) ?? 0) + delta);
  });
  let total = 0;
  let idle = 0;
  const areas = new Map<string, number>();
  const fns = new Map<string, { fn: string; where: string; us: number }>();
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const { functionName, url, lineNumber } = n.callFrame;
    total += us;
    if (functionName === '(idle)') {
      idle += us;
      continue;
    }
    const area = areaOf(url, functionName);
    areas.set(area, (areas.get(area) ?? 0) + us);
    const where = url ? `${url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${lineNumber + 1}` : '';
    const key = `${functionName}@${where}`;
    const f = fns.get(key) ?? { fn: functionName || '(anonymous)', where, us: 0 };
    f.us += us;
    fns.set(key, f);
  }
  const busy = total - idle;
  const pct = (us: number) => Math.round((us / busy) * 1000) / 10;
  return {
    totalMs: Math.round(total / 1000),
    busyMs: Math.round(busy / 1000),
    areas: [...areas].sort((a, b) => b[1] - a[1]).slice(0, top).map(([area, us]) => ({ area, pct: pct(us) })),
    areaUs: Object.fromEntries(areas),
    functions: [...fns.values()].sort((a, b) => b.us - a.us).slice(0, top).map((f) => ({ fn: f.fn, where: f.where, pct: pct(f.us) })),
  };
}
