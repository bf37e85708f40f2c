/**
 * Gateways for tests: in-process (lib/server.ts start() on port 0, silent logs) or as real child processes of
 * dist/lib/cli.js for multi-node and signal tests. Every helper returns something to stop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadConfig, type ConfigInput } from '../../lib/config.js';
import type { GatewayParts } from '../../lib/gateway.js';
import { start, type RunningGateway } from '../../lib/server.js';
import { createLogger } from '../../lib/log.js';

export const TEST_SECRET = 'test-secret-0123456789abcdefghijklmnopqrstuvwxyz';
export const TEST_API_KEY = 'test-api-key-0123456789';

export interface TestGateway extends RunningGateway {
  url: string;
  apiKey: string;
  /** A client token signed with the gateway's secret. */
  token(claims: { sub: string; streams: string[]; pub?: string[]; ttlSeconds?: number }): Promise<string>;
}

function merge(a: Record<string, any>, b: Record<string, any>): Record<string, any> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && out[k] && typeof out[k] === 'object' ? merge(out[k], v) : v;
  }
  return out;
}

export function testConfig(overrides: ConfigInput = {}) {
  const base: ConfigInput = {
    port: 0,
    host: '127.0.0.1',
    auth: { secret: TEST_SECRET, apiKeys: [TEST_API_KEY] },
    log: { level: 'silent' },
  };
  return loadConfig({ env: { NODE_ENV: 'test' }, files: false, overrides: merge(base, overrides) as ConfigInput });
}

/** Starts an in-process gateway; call shutdown() when done. */
export async function startGateway(overrides: ConfigInput = {}, options: GatewayParts = {}): Promise<TestGateway> {
  const config = testConfig(overrides);
  const gw = await start(config, { log: createLogger(config.log.level), ...options });
  return Object.assign(gw, {
    url: `http://127.0.0.1:${gw.port}`,
    apiKey: TEST_API_KEY,
    token: (c: { sub: string; streams: string[]; pub?: string[]; ttlSeconds?: number }) => gw.auth.mintToken({ ttlSeconds: 3600, ...c }),
  });
}

export interface ChildGateway {
  url: string;
  port: number;
  process: ChildProcess;
  /** What the process printed so far (the last 256 KiB: long fault runs print a lot). */
  output(): string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  /** SIGKILL if still running. */
  kill(): Promise<void>;
}

const OUTPUT_KEPT = 256 * 1024;
const keepTail = (s: string) => (s.length > OUTPUT_KEPT ? s.slice(-OUTPUT_KEPT) : s);

const CLI = fileURLToPath(new URL('../../lib/cli.js', import.meta.url));

/** Spawns `node dist/lib/cli.js [args]` on a free port and resolves once it logs that it listens. */
export async function spawnGateway(env: Record<string, string>, args: string[] = [], nodeFlags: string[] = []): Promise<ChildGateway> {
  const child = spawn(process.execPath, [...nodeFlags, CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1', POLLGATE_SECRET: TEST_SECRET, POLLGATE_API_KEYS: TEST_API_KEY, ...env, LOG_LEVEL: env.LOG_LEVEL === 'debug' ? 'debug' : 'info' },
    // (info at least: the harness learns the port from the "listening" log line)
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      out = keepTail(out + chunk.toString());
      const m = /"port":(\d+),[^\n]*"msg":"listening"/.exec(out);
      if (m) resolve(Number(m[1]));
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (c: Buffer) => (out = keepTail(out + c.toString())));
    exited.then((code) => reject(new Error(`gateway exited (${code}) before listening:\n${out}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    process: child,
    output: () => out,
    exited,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
