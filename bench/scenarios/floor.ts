/**
 * Calibration: CPU µs per request of a bare node:http server on this machine, now. The machine
 * is shared, so a run's numbers are best read against the floor measured beside them.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { pool, round } from '../client.js';
import { hasTaskset, sleep } from '../gateway.js';
import { freePort } from '../../spec/support/ports.js';

const SERVER = fileURLToPath(new URL('../floor-server.js', import.meta.url));

export interface FloorResult {
  server: 'http' | 'koa';
  requests: number;
  cpuUsPerRequest: number;
  requestsPerSec: number;
}

export async function floor(server: 'http' | 'koa', requests: number): Promise<FloorResult> {
  const port = await freePort();
  const cmd = [...(hasTaskset ? ['taskset', '-c', '0'] : []), process.execPath, SERVER];
  const child = spawn(cmd[0]!, cmd.slice(1), { env: { PORT: String(port), FLOOR: server }, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`floor server exited ${code}`)));
  });
  const p = pool(`http://127.0.0.1:${port}`, 32);
  const cpu = async () => {
    const r = await p.request({ method: 'GET', path: '/cpu' });
    return Number(await r.body.text());
  };
  const post = async () => {
    const r = await p.request({ method: 'POST', path: '/send', headers: { 'content-type': 'application/json' }, body: '{"stream":"floor","data":{"n":1}}' });
    await r.body.text();
  };
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
