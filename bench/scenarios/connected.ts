/**
 * Open connections: N WebSocket or SSE clients, each subscribed to its own stream and idle. RSS
 * and live heap per connection over the idle baseline (after GC), then the same once they all
 * left by closing their connections: memory and descriptors must come back.
 */
import { pool, round } from '../client.js';
import { sleep } from '../gateway.js';
import { openInChunks, openStream, type StreamTransport } from '../stream-client.js';
import type { ScenarioContext } from './context.js';
import { openFds } from './parked.js';

export interface ConnectedResult {
  transport: StreamTransport;
  clients: number;
  baselineRssMB: number;
  kbPerConnection: number;
  kbHeapPerConnection: number;
  rssAfterLeaveMB: number;
  heapAfterLeaveMB: number;
  fdsBase: number;
  fdsAfterLeave: number;
  openSeconds: number;
}

const MB = 1024 * 1024;

export async function connectedMemory(ctx: ScenarioContext, transport: StreamTransport, clients: number): Promise<ConnectedResult> {
  const name = `connected-${transport}-${clients}`;
  const base = await ctx.gw.stats(false, true);
  const fdsBase = openFds(ctx.gw.pid);
  const conns = pool(ctx.gw.url, clients);
  const started = performance.now();
  const open = await openInChunks(clients, (i) =>
    openStream(transport, ctx.gw.url, ctx.token, `${ctx.tag}:c:${transport}:${clients}:${i}`, {
      onMessages: () => ctx.violations.add(name, 'an idle stream carried messages'),
      onProblem: (what) => ctx.violations.add(name, what),
    }, conns),
  );
  const openSeconds = (performance.now() - started) / 1000;
  await sleep(300);
  const connected = await ctx.gw.stats(false, true);
  if (connected.waiters - base.waiters !== clients) ctx.violations.add(name, `${clients} subscribed, the gateway has ${connected.waiters - base.waiters} waiters`);

  for (const c of open) c.close();
  await conns.destroy();
  await ctx.gw.waitFor('closed connections to leave', (s) => s.waiters === base.waiters);
  await sleep(500);
  const afterLeave = await ctx.gw.stats(false, true);
  return {
    transport,
    clients,
    baselineRssMB: round(base.memory.rss / MB),
    kbPerConnection: round((connected.memory.rss - base.memory.rss) / 1024 / clients, 2),
    kbHeapPerConnection: round((connected.memory.heapUsed - base.memory.heapUsed) / 1024 / clients, 2),
    rssAfterLeaveMB: round(afterLeave.memory.rss / MB),
    heapAfterLeaveMB: round(afterLeave.memory.heapUsed / MB),
    fdsBase,
    fdsAfterLeave: openFds(ctx.gw.pid),
    openSeconds: round(openSeconds, 2),
  };
}
