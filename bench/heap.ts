/**
 * The two measures that do not move with this machine's noise (docs/PERFORMANCE.md, "What a
 * parked poll holds"), taken through the gateway's inspector:
 *
 *   --held   bytes a parked poll holds: N clients poll once (so their connections exist), then
 *            each parks a poll with its cursor; two heap snapshots, before and after the
 *            parking, compared by object type. With --transport=ws|sse: bytes an open
 *            WebSocket or SSE connection holds, subscribed to a stream with one message
 *            (snapshots before connecting and once every client has that message).
 *   --alloc  bytes allocated per request under the targeted maximum: V8's sampling heap
 *            profiler with collected objects included, over the requests the gateway took
 *            in the measured window (set-up and priming left out); the functions that allocate
 *            the most. With --transport=ws|sse the requests are
 *            the sends, one per delivered message.
 *   --alloc --survivors  the same, counting only what survived a scavenge (what the young
 *            generation copied and promoted, or allocated straight into the old one): the
 *            allocation sites of the GC's costly bytes (docs/PERFORMANCE.md, "What a scavenge promotes").
 *   --alloc-parking  (long-polling only) bytes allocated per parked poll while N clients (default 5,000) each park a
 *            poll on a stream of its own (the parked-memory scenario): what the parking leaves
 *            for the GC, some of it promoted before it dies (RSS per parked poll counts the old
 *            space it grew).
 *
 *   node dist/bench/heap.js --held|--alloc [--survivors] [--top=N]|--alloc-parking [--store=memory|redis] [--transport=poll|ws|sse] [--clients=N] [--seconds=S] [--node-flags=a,b]
 *
 * --node-flags go to the gateway: --no-turbo-inlining, say, with --alloc, charges each allocation
 * to the function that made it rather than to the optimized function it was inlined into.
 */
import WebSocket from 'ws';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { poll, pool, readerToken, send, sharedAbort, Violations } from './client.js';
import type { GatewayProcess } from './gateway.js';
import { targeted } from './scenarios/targeted.js';
import { openInChunks, openStream, type StreamClient, type Transport } from './stream-client.js';
import { freePort } from '../spec/support/ports.js';
import { startRedisServer } from '../spec/support/redis.js';
import { parkInChunks, withGateway, type ScenarioContext } from './scenarios/context.js';
import { areaOf } from './profile.js';
import { option } from './args.js';

const args = process.argv.slice(2);
const store = option('store', 'memory') as 'memory' | 'redis';
const held = args.includes('--held');
const allocParking = args.includes('--alloc-parking');
/** Leave out what a scavenge collected: only the bytes that survived one (or never were young). */
const survivors = args.includes('--survivors');
const transport = option('transport', 'poll') as Transport;
const nodeFlags = option('node-flags', '').split(',').filter(Boolean);

/** A minimal Chrome DevTools Protocol client: calls, and the chunks of a heap snapshot. */
class Inspector {
  private next = 0;
  private readonly pending = new Map<number, (result: unknown) => void>();
  private chunks: string[] = [];

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as { id?: number; method?: string; params?: { chunk: string }; result?: unknown };
      if (m.method === 'HeapProfiler.addHeapSnapshotChunk') this.chunks.push(m.params!.chunk);
      else if (m.id !== undefined) this.pending.get(m.id)?.(m.result);
    });
  }

  static async connect(port: number): Promise<Inspector> {
    const [target] = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
    const ws = new WebSocket(target!.webSocketDebuggerUrl);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    return new Inspector(ws);
  }

  call<T = unknown>(method: string, params: object = {}): Promise<T> {
    const id = ++this.next;
    this.ws.send(JSON.stringify({ id, method, params }));
    return new Promise((resolve) => this.pending.set(id, (r) => (this.pending.delete(id), resolve(r as T))));
  }

  /** Self size in bytes by object type (`object:Promise`, `closure:`, `string`, ...), after a GC. */
  async heapByType(): Promise<Map<string, { count: number; bytes: number }>> {
    this.chunks = [];
    await this.call('HeapProfiler.collectGarbage');
    await this.call('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
    const snap = JSON.parse(this.chunks.join('')) as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[]; strings: string[] };
    const fields = snap.snapshot.meta.node_fields;
    const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number];
    const out = new Map<string, { count: number; bytes: number }>();
    for (let i = 0; i < snap.nodes.length; i += fields.length) {
      const type = snap.snapshot.meta.node_types[0][snap.nodes[i + typeAt]!]!;
      const named = type === 'object' || type === 'closure' || type === 'native';
      const key = type.endsWith('string') ? 'string' : named ? `${type}:${snap.strings[snap.nodes[i + nameAt]!]}` : type;
      const entry = out.get(key) ?? { count: 0, bytes: 0 };
      entry.count++;
      entry.bytes += snap.nodes[i + sizeAt]!;
      out.set(key, entry);
    }
    return out;
  }

  close(): void {
    this.ws.close();
  }
}

interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
}

async function main(): Promise<void> {
  const redis = store === 'redis' ? await startRedisServer() : undefined;
  const port = await freePort();
  const token = await readerToken();
  const setup = {
    store, redis, violations: new Violations(), token, maxClients: 15000,
    logLevel: 'warn', logFile: join(tmpdir(), 'heap-gateway.log'), extraEnv: { NODE_OPTIONS: `--inspect=127.0.0.1:${port}` }, nodeFlags,
  };
  try {
    await withGateway(setup, async (ctx) => {
      const inspector = await Inspector.connect(port);
      try {
        if (held) await measureHeld(ctx.gw, inspector, token, Number(option('clients', '2000')));
        else if (allocParking) await measureParkingAlloc(ctx, inspector);
        else await measureAlloc(ctx, inspector);
      } finally {
        inspector.close();
      }
    });
  } finally {
    await redis?.stop();
  }
}

async function measureHeld(gw: GatewayProcess, inspector: Inspector, token: string, clients: number): Promise<void> {
  const polls = pool(gw.url, clients);
  const pub = pool(gw.url, 16);
  const streams = Array.from({ length: clients }, (_, i) => `held:${i}`);
  await Promise.all(streams.map((s) => send(pub, s, { n: 0, t: 0 })));
  let before: Awaited<ReturnType<Inspector['heapByType']>>;
  const stop = sharedAbort();
  let parked: Promise<unknown>[] = [];
  let open: StreamClient[] = [];
  if (transport === 'poll') {
    const first = await Promise.all(streams.map((s) => poll(polls, token, { streams: s, since: 'earliest', timeoutS: 25 })));
    before = await inspector.heapByType();
    parked = streams.map((s, i) => poll(polls, token, { streams: s, cursor: first[i]!.cursor, timeoutS: 25, signal: stop.signal }).catch(() => undefined));
    await gw.waitFor(`${clients} polls to park`, (st) => st.parkedPolls >= clients);
  } else {
    before = await inspector.heapByType();
    let got = 0;
    open = await openInChunks(clients, (i) => openStream(transport, gw.url, token, streams[i]!, {
      onMessages: (m) => (got += m.length),
      onProblem: (what) => console.error(what),
    }, polls));
    await gw.waitFor(`${clients} clients to have their message`, () => got >= clients);
  }
  // Parked is not yet quiet: with Redis, each poll's SUBSCRIBE and the read after it may still
  // be in flight. Wait until the store's counters have not moved for ten /stats calls.
  let last = '';
  let still = 0;
  await gw.waitFor('the store to go quiet', (st) => {
    const now = JSON.stringify((st as unknown as { storeStats?: unknown }).storeStats ?? {});
    still = now === last ? still + 1 : 0;
    last = now;
    return still >= 10;
  });
  const after = await inspector.heapByType();
  const rows: [string, number, number][] = [];
  let total = 0;
  for (const [key, a] of after) {
    const b = before.get(key) ?? { count: 0, bytes: 0 };
    total += a.bytes - b.bytes;
    rows.push([key, (a.count - b.count) / clients, (a.bytes - b.bytes) / clients]);
  }
  for (const [key, b] of before) if (!after.has(key)) total -= b.bytes;
  const what = transport === 'poll' ? 'parked poll' : `open ${transport} connection`;
  console.log(`${store}: ${(total / clients).toFixed(0)} bytes held per ${what} (${clients}, with a position)`);
  console.log('bytes/poll  objects/poll  type');
  for (const [key, count, bytes] of rows.filter((r) => Math.abs(r[2]) >= 16).sort((x, y) => y[2] - x[2])) {
    console.log(`${bytes.toFixed(0).padStart(10)}  ${count.toFixed(2).padStart(12)}  ${key}`);
  }
  stop.abort();
  for (const c of open) c.close();
  await Promise.allSettled(parked);
  await Promise.all([polls.destroy(), pub.destroy()]);
}

async function measureAlloc(ctx: ScenarioContext, inspector: Inspector): Promise<void> {
  const { gw } = ctx;
  const clients = Number(option('clients', '1000'));
  await targeted(ctx, clients, 0, 1.5, 'warmup', transport);
  await inspector.call('HeapProfiler.enable');
  // Sampled over the measured window only: the clients' set-up and the priming sends stay out.
  let served0 = 0;
  let requests = 0;
  let profile: { head: SamplingNode } | undefined;
  await targeted(ctx, clients, 0, Number(option('seconds', '6')), 'sampled', transport, {
    started: async () => {
      served0 = (await gw.stats()).requests;
      await inspector.call('HeapProfiler.startSampling', { samplingInterval: 512, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: !survivors });
    },
    ended: async () => {
      ({ profile } = await inspector.call<{ profile: { head: SamplingNode } }>('HeapProfiler.stopSampling'));
      requests = (await gw.stats()).requests - served0;
    },
  });
  if (!profile) throw new Error('the targeted run ended before its measured window');
  if (ctx.violations.list.length) throw new Error(`violations: ${ctx.violations.list.slice(0, 5).join('; ')}`);
  report(profile, requests, `${store}${transport === 'poll' ? '' : ` over ${transport}`}${survivors ? ', survivors of a scavenge only' : ''}`, 'request', 'requests');
}

async function measureParkingAlloc(ctx: ScenarioContext, inspector: Inspector): Promise<void> {
  const clients = Number(option('clients', '5000'));
  const p = pool(ctx.gw.url, clients);
  const abort = sharedAbort();
  try {
    await inspector.call('HeapProfiler.enable');
    await inspector.call('HeapProfiler.startSampling', { samplingInterval: 512, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    const polls = await parkInChunks(ctx, clients, (i) => poll(p, ctx.token, { streams: `${ctx.tag}:alloc-parking:${i}`, since: 'earliest', timeoutS: 55, signal: abort.signal }));
    const { profile } = await inspector.call<{ profile: { head: SamplingNode } }>('HeapProfiler.stopSampling');
    abort.abort();
    await Promise.allSettled(polls);
    if (ctx.violations.list.length) throw new Error(`violations: ${ctx.violations.list.slice(0, 5).join('; ')}`);
    report(profile, clients, store, 'parked poll', 'parked polls');
  } finally {
    await p.destroy();
  }
}

/** Who allocated, coarser than bench/profile.ts's areas: Node, each package, pollgate's lib/, V8's builtins. */
function allocationArea(url: string, fn: string): string {
  const area = areaOf(url, fn);
  if (area.startsWith('lib/')) return 'pollgate lib/';
  if (area.startsWith('node:')) return 'Node';
  return area.startsWith('native:') ? 'V8 builtins and API' : area;
}

/** Bytes sampled per unit of work, by area, and the functions that allocated the most (--top=N, default 30). */
function report(profile: { head: SamplingNode }, units: number, what: string, unit: string, unitPlural: string): void {
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  let total = 0;
  const walk = (n: SamplingNode) => {
    const f = n.callFrame;
    const name = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${f.lineNumber + 1}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + n.selfSize);
    const area = allocationArea(f.url, f.functionName);
    byArea.set(area, (byArea.get(area) ?? 0) + n.selfSize);
    total += n.selfSize;
    n.children.forEach(walk);
  };
  walk(profile.head);
  console.log(`${what}: ${(total / units).toFixed(0)} bytes allocated per ${unit} (${units} ${unitPlural}, ${(total / 1e6).toFixed(0)} MB sampled)`);
  const areas = [...byArea].sort((a, b) => b[1] - a[1]).filter(([, bytes]) => bytes / units >= 1);
  console.log(`  by area, bytes per ${unit}: ${areas.map(([area, bytes]) => `${area} ${(bytes / units).toFixed(0)}`).join(', ')}`);
  for (const [name, bytes] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, Number(option('top', '30')))) {
    console.log(`${((100 * bytes) / total).toFixed(1).padStart(6)}%  ${name}`);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
