/**
 * Real Redis for tests. The harness starts its own redis-server on a free port (and only ever
 * flushes or kills a server it started), or uses REDIS_URL with a random key prefix per test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';

export interface RedisServer {
  url: string;
  port: number;
  /** True when the harness started it (so tests may stop, pause or flush it). */
  owned: boolean;
  process?: ChildProcess;
  dir?: string;
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  port?: number;
  dir?: string;
  appendonly?: boolean;
  extraArgs?: string[];
}

/** Starts redis-server and resolves once it accepts connections. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const start = (port: number) => {
    const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'pollgate-redis-'));
    const args = [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
      '--appendonly', options.appendonly ? 'yes' : 'no', '--logfile', '', ...(options.extraArgs ?? []),
    ];
    return spawnRedis(args, { port, dir, ownsDir: !options.dir, ready: /Ready to accept connections/, what: 'redis-server' });
  };
  return options.port === undefined ? onFreePorts(1, ([port]) => start(port!)) : start(options.port);
}

/**
 * Runs `start` on `count` ports that were free a moment ago, and again on others when a server
 * could not bind one: freePort() can only say a port was free, and another process (a client's
 * ephemeral port, say) may take it before the server binds it.
 */
export async function onFreePorts<T>(count: number, start: (ports: number[]) => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) ports.push(await freePort());
    try {
      return await start(ports);
    } catch (err) {
      if (attempt >= attempts || !/Address already in use/.test((err as Error).message)) throw err;
    }
  }
}

/**
 * Spawns redis-server with `args` (a data node, or a Sentinel given its config file) and resolves
 * once its log says `ready`; its stop() SIGKILLs it and, when `ownsDir`, removes its directory.
 */
export async function spawnRedis(
  args: string[], o: { port: number; dir: string; ownsDir: boolean; ready: RegExp; what: string },
): Promise<RedisServer> {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const started = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (o.ready.test(output)) {
        child.stdout!.off('data', onData);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${o.what} exited with ${code}: ${output.slice(-500)}`)));
    child.once('error', reject);
  });
  try {
    await started;
  } catch (err) {
    if (o.ownsDir) rmSync(o.dir, { recursive: true, force: true });
    throw err;
  }
  child.stdout!.resume();
  child.stderr!.resume();
  return {
    url: `redis://127.0.0.1:${o.port}`,
    port: o.port,
    owned: true,
    process: child,
    dir: o.dir,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
      if (o.ownsDir) rmSync(o.dir, { recursive: true, force: true });
    },
  };
}

let shared: RedisServer | undefined;

/** The suite's Redis: REDIS_URL if set, else one server started for the whole run. */
export async function sharedRedis(): Promise<RedisServer> {
  if (shared) return shared;
  if (process.env.REDIS_URL) {
    shared = { url: process.env.REDIS_URL, port: Number(new URL(process.env.REDIS_URL).port || 6379), owned: false, stop: async () => {} };
  } else {
    shared = await startRedisServer();
  }
  return shared;
}

export async function stopSharedRedis(): Promise<void> {
  await shared?.stop();
  shared = undefined;
}

/** A fresh key prefix, so tests never see each other's keys and nothing needs flushing. */
export function uniquePrefix(): string {
  return `pgtest:${randomBytes(6).toString('hex')}:`;
}

/** A plain client for test assertions; the caller quits it. */
export function redisClient(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: 1 });
}
