/**
 * The gateway under test, as a separate process pinned to core 0 (when taskset exists) with a
 * raised file-descriptor limit. Its CPU time, RSS and event-loop delay come from GET /stats.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { freePort } from '../spec/support/ports.js';

export const BENCH_SECRET = 'bench-secret-0123456789abcdefghijklmnopqrstuvwxyz';
export const BENCH_API_KEY = 'bench-api-key-0123456789';
const CLI = fileURLToPath(new URL('../lib/cli.js', import.meta.url));
/** Bench-only config layered over production's (read from the source tree: tsc does not copy JSON). */
const BENCH_CONFIG = fileURLToPath(new URL('../../bench/gateway-config.json', import.meta.url));

export const hasTaskset = spawnSync('taskset', ['--version']).status === 0;

/**
 * The node flags of package.json's start script (`node <flags> dist/lib/cli.js`): the gateway is
 * measured as `npm start` runs it, and every peer server runs with the same flags, so no target
 * gets a runtime tuning the others lack (docs/PERFORMANCE.md, "The young generation").
 */
export function startScriptFlags(packageJson = readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')): string[] {
  const start = (JSON.parse(packageJson) as { scripts: { start: string } }).scripts.start.trim().split(/\s+/);
  if (start[0] !== 'node') throw new Error(`package.json's start script does not run node: ${start.join(' ')}`);
  return start.slice(1, -1).filter((a) => a.startsWith('--'));
}
export const START_FLAGS = startScriptFlags();

export interface GatewayOptions {
  redisUrl: string;
  logLevel: string;
  /** Where the gateway's stdout (its log) goes; a file, as a log shipper would read it. */
  logFile: string;
  /** Directory for a V8 CPU profile written when the gateway exits. */
  cpuProfDir?: string;
  extraEnv?: Record<string, string>;
  /** Extra node (V8) flags for the gateway, e.g. --trace-gc; after the start script's, so one of them can be overridden. */
  nodeFlags?: string[];
  /** A command the gateway runs under (e.g. valgrind), instead of the core pinning. */
  wrapper?: string[];
  /** Told the child process as soon as it is spawned (before it answers), e.g. to kill it on exit. */
  onSpawn?: (child: ChildProcess) => void;
  /** Another server to run in the gateway's place (bench/long-poll-floor-server.ts), by its compiled path. */
  script?: string;
  /** How long the gateway may take to answer /healthz (default 15 s). */
  startTimeoutMs?: number;
}

export interface Stats {
  pid: number;
  parkedPolls: number;
  waiters: number;
  subscribedStreams: number;
  /** Requests the gateway's pipeline took since start. */
  requests: number;
  cpuMicros: { user: number; system: number };
  memory: { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number };
  eventLoopDelayMs: { p50: number; p99: number; max: number; samples: number };
}

export class GatewayProcess {
  private readonly admin: Pool;
  private constructor(readonly url: string, readonly child: ChildProcess, private readonly exited: Promise<unknown>, private readonly stderr: () => string) {
    this.admin = new Pool(url, { connections: 1 });
  }

  static async start(o: GatewayOptions): Promise<GatewayProcess> {
    const port = await freePort();
    const node = [process.execPath, '--expose-gc', ...START_FLAGS, ...(o.nodeFlags ?? []), ...(o.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`] : []), o.script ?? CLI];
    const pin = o.wrapper ? '' : hasTaskset ? 'taskset -c 0 ' : '';
    const quoted = [...(o.wrapper ?? []), ...node].map((a) => `'${a}'`).join(' ');
    const out = openSync(o.logFile, 'a');
    const child = spawn('bash', ['-c', `ulimit -n 65536 2>/dev/null || ulimit -n $(ulimit -Hn); exec ${pin}${quoted}`], {
      env: {
        PATH: process.env.PATH ?? '', NODE_ENV: 'production', PORT: String(port), HOST: '127.0.0.1',
        POLLGATE_SECRET: BENCH_SECRET, POLLGATE_API_KEYS: BENCH_API_KEY, POLLGATE_DEMO_TOKEN: 'false',
        REDIS_URL: o.redisUrl, POLLGATE_REDIS_PREFIX: 'bench:', LOG_LEVEL: o.logLevel,
        // Every bench client comes from 127.0.0.1: lift the per-IP caps and rates the bench is not about.
        POLLGATE_CONFIG: BENCH_CONFIG, ...o.extraEnv,
      },
      stdio: ['ignore', out, 'pipe'],
    });
    closeSync(out);
    o.onSpawn?.(child);
    let err = '';
    child.stderr!.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-4000)));
    const exited = new Promise((r) => child.once('exit', r));
    const gw = new GatewayProcess(`http://127.0.0.1:${port}`, child, exited, () => err);
    const startTimeoutMs = o.startTimeoutMs ?? 15_000;
    const deadline = Date.now() + startTimeoutMs;
    for (;;) {
      if (child.exitCode !== null) {
        await gw.admin.destroy();
        throw new Error(`gateway exited (${child.exitCode}): ${err}`);
      }
      try {
        const r = await gw.admin.request({ method: 'GET', path: '/healthz' });
        await r.body.text();
        if (r.statusCode === 200) return gw;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        // Not left running (it would hold its port and a core) when its caller gives up.
        child.kill('SIGKILL');
        await Promise.all([exited, gw.admin.destroy()]);
        throw new Error(`gateway did not start within ${startTimeoutMs} ms: ${err}`);
      }
      await sleep(50);
    }
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** `reset` restarts the loop-delay histogram; `gc` collects garbage first (the gateway runs with --expose-gc). */
  async stats(reset = false, gc = false): Promise<Stats> {
    const q = [reset ? 'reset=1' : '', gc ? 'gc=1' : ''].filter(Boolean).join('&');
    const r = await this.admin.request({ method: 'GET', path: `/stats${q ? `?${q}` : ''}`, headers: { authorization: `Bearer ${BENCH_API_KEY}` } });
    const text = await r.body.text();
    if (r.statusCode !== 200) throw new Error(`/stats ${r.statusCode}: ${text}`);
    return JSON.parse(text) as Stats;
  }

  /** Server CPU time so far in µs (user + system). */
  async cpuMicros(): Promise<number> {
    const s = await this.stats();
    return s.cpuMicros.user + s.cpuMicros.system;
  }

  /** Polls /stats until `ok` holds; throws after `timeoutMs`. */
  async waitFor(what: string, ok: (s: Stats) => boolean, timeoutMs = 30_000): Promise<Stats> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.stats();
      if (ok(s)) return s;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (parked ${s.parkedPolls})`);
      await sleep(50);
    }
  }

  /** SIGTERM (the gateway drains and exits, writing its CPU profile), SIGKILL after 15 s. */
  async stop(): Promise<void> {
    await this.admin.close();
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(t);
  }

  stderrTail(): string {
    return this.stderr();
  }
}

/** CPU time of any process in µs from /proc/PID/stat (utime + stime, 10 ms ticks). */
export function procCpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
