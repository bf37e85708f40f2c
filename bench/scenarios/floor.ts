/**
 * Calibration: CPU µs per request of a bare node:http server on this machine, now. The machine
 * is shared, so a run's numbers are best read against the floor measured beside them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Pool } from 'undici';
import { arrivalTimes, pool, round, type ArrivalTimes } from '../client.js';
import { hasTaskset, sleep, START_FLAGS } from '../gateway.js';
import { freePort } from '../../spec/support/ports.js';

const SERVER = fileURLToPath(new URL('../floor-server.js', import.meta.url));
/** bench/long-poll-floor-server.ts, run in the gateway's place (GatewayOptions.script). */
export const LONG_POLL_FLOOR = fileURLToPath(new URL('../long-poll-floor-server.js', import.meta.url));

export interface FloorResult {
  server: 'http' | 'koa';
  requests: number;
  cpuUsPerRequest: number;
  requestsPerSec: number;
}

export interface FloorServerOptions {
  /** A command the server runs under (e.g. valgrind), instead of the core pinning; its stderr is dropped. */
  wrapper?: string[];
  env?: Record<string, string>;
  /** Told the child process as soon as it is spawned. */
  onSpawn?: (child: ChildProcess) => void;
}

/** Starts bench/floor-server.ts on a free port and resolves once it listens. */
export async function startFloorServer(server: 'http' | 'koa', o: FloorServerOptions = {}): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const cmd = [...(o.wrapper ?? (hasTaskset ? ['taskset', '-c', '0'] : [])), process.execPath, '--expose-gc', ...START_FLAGS, SERVER];
  const child = spawn(cmd[0]!, cmd.slice(1), {
    env: { PATH: process.env.PATH ?? '', PORT: String(port), FLOOR: server, ...o.env },
    stdio: ['ignore', 'pipe', o.wrapper ? 'ignore' : 'inherit'],
  });
  o.onSpawn?.(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`floor server exited ${code}`)));
  });
  return { port, child };
}

/** One POST /send to the floor server, a body like a one-message send. */
export async function floorRequest(p: Pool): Promise<void> {
  const r = await p.request({ method: 'POST', path: '/send', headers: { 'content-type': 'application/json' }, body: '{"stream":"floor","data":{"n":1}}' });
  await r.body.text();
}

export async function floor(server: 'http' | 'koa', requests: number): Promise<FloorResult> {
  const { port, child } = await startFloorServer(server);
  const p = pool(`http://127.0.0.1:${port}`, 32);
  const cpu = async () => {
    const r = await p.request({ method: 'GET', path: '/cpu' });
    return Number(await r.body.text());
  };
  const post = () => floorRequest(p);
  for (let k = 0; k < 2000; k++) await post();
  await sleep(100);
  const c0 = await cpu();
  const t0 = performance.now();
  let left = requests;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (left-- > 0) await post();
  }));
  const seconds = (performance.now() - t0) / 1000;
  const c1 = await cpu();
  await p.destroy();
  child.kill('SIGTERM');
  return { server, requests, cpuUsPerRequest: round((c1 - c0) / requests), requestsPerSec: Math.round(requests / seconds) };
}

export interface FanoutFloorResult extends ArrivalTimes {
  clients: number;
  serverCpuMs: number;
  /** RSS per held request over the idle server's, after a GC (the 12.4 KB at 10k). */
  kbRssPerHeld: number;
  /** Live JS heap per held request. */
  kbHeapPerHeld: number;
}

/**
 * The broadcast floor: `clients` requests held by the bare node:http server, then answered all in
 * one loop; time until 50/99/100% of them have their answer at the load generator, and the
 * server's CPU for it. No framework, no store, no JSON building: what pollgate's fan-out is read against.
 */
export async function fanoutFloor(clients: number): Promise<FanoutFloorResult> {
  const { port, child } = await startFloorServer('http');
  const url = `http://127.0.0.1:${port}`;
  const p = pool(url, clients);
  const admin = pool(url, 1);
  const get = async (path: string, method: 'GET' | 'POST' = 'GET', headers: Record<string, string> = {}) => {
    const r = await admin.request({ method, path, headers });
    return r.body.text();
  };
  const arrivals: number[] = [];
  let t0 = 0;
  const held: Promise<void>[] = [];
  try {
    const rss0 = Number(await get('/memory'));
    const heap0 = Number(await get('/memory', 'GET', { 'x-heap': '1' }));
    for (let i = 0; i < clients; ) {
      const end = Math.min(clients, i + 500);
      for (; i < end; i++) {
        held.push(p.request({ method: 'GET', path: '/park' }).then(async (r) => {
          await r.body.text();
          arrivals.push(performance.now() - t0);
        }));
      }
      const deadline = Date.now() + 60_000;
      while (Number(await get('/parked')) < end) {
        if (Date.now() > deadline) throw new Error('floor: requests did not park');
        await sleep(20);
      }
    }
    const rss1 = Number(await get('/memory'));
    const heap1 = Number(await get('/memory', 'GET', { 'x-heap': '1' }));
    const c0 = Number(await get('/cpu'));
    t0 = performance.now();
    await get('/release', 'POST');
    await Promise.all(held);
    const c1 = Number(await get('/cpu'));
    return {
      clients,
      ...arrivalTimes(arrivals),
      serverCpuMs: round((c1 - c0) / 1000),
      kbRssPerHeld: round((rss1 - rss0) / clients / 1024, 2),
      kbHeapPerHeld: round((heap1 - heap0) / clients / 1024, 2),
    };
  } finally {
    await Promise.all([p.destroy(), admin.destroy()]);
    child.kill('SIGTERM');
  }
}
