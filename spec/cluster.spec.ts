/**
 * `pollgate --workers N`: argument parsing, the Redis-only rule, and a real cluster of two
 * workers on one port that shares cursors and wake-ups and drains on SIGTERM.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { get } from 'node:http';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { assertClusterable, workersFromArgv } from '../lib/cluster.js';
import { ConfigError } from '../lib/config.js';
import { spawnGateway, testConfig, TEST_API_KEY, type ChildGateway } from './support/gateway.js';
import { poll, sendOk } from './support/http.js';
import { sharedRedis, uniquePrefix } from './support/redis.js';
import { waitFor } from './support/wait.js';

/** GET /stats on a fresh connection (no keep-alive), so the cluster may pick any worker. */
function statsPid(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(`${url}/stats`, { agent: false, headers: { authorization: `Bearer ${TEST_API_KEY}` } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve((JSON.parse(body) as { pid: number }).pid));
    }).once('error', reject);
  });
}

describe('workersFromArgv', () => {
  it('is 1 without the flag, the number given, or every core for "auto"', () => {
    expect(workersFromArgv([])).to.equal(1);
    expect(workersFromArgv(['--workers', '3'])).to.equal(3);
    expect(workersFromArgv(['--workers=2'])).to.equal(2);
    expect(workersFromArgv(['--workers', 'auto'])).to.equal(availableParallelism());
  });

  it('throws ConfigError for anything else', () => {
    for (const bad of [['--workers'], ['--workers', '0'], ['--workers', 'two'], ['--workers=-1'], ['--workers', '1e3']]) {
      expect(() => workersFromArgv(bad), bad.join(' ')).to.throw(ConfigError, /--workers/);
    }
  });
});

describe('assertClusterable', () => {
  it('refuses several workers on the memory store, and allows them on Redis', () => {
    expect(() => assertClusterable(testConfig(), 2)).to.throw(ConfigError, /REDIS_URL/);
    expect(() => assertClusterable(testConfig(), 1)).not.to.throw();
    expect(() => assertClusterable(testConfig({ redis: { url: 'redis://127.0.0.1:1' } }), 2)).not.to.throw();
    expect(() => assertClusterable(testConfig({ redis: { sentinels: ['127.0.0.1:1'], name: 'm' } }), 2)).not.to.throw();
  });
});

describe('pollgate --workers', function () {
  this.timeout(30_000);
  let gw: ChildGateway | undefined;
  afterEach(async () => {
    await gw?.kill();
    gw = undefined;
  });

  it('exits non-zero with the memory store, naming REDIS_URL', async () => {
    const cli = fileURLToPath(new URL('../lib/cli.js', import.meta.url));
    const child = spawn(process.execPath, [cli, '--workers', '2'], { env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    const guard = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const code = await new Promise((r) => child.once('close', r));
    clearTimeout(guard);
    expect(code).to.equal(1);
    expect(stderr).to.include('REDIS_URL');
  });

  it('serves one port from two workers that share cursors and wake-ups, and drains on SIGTERM', async () => {
    const redis = await sharedRedis();
    gw = await spawnGateway({ REDIS_URL: redis.url, POLLGATE_REDIS_PREFIX: uniquePrefix() }, ['--workers', '2']);
    // spawnGateway returns at the first worker's "listening"; the second may still be starting.
    await waitFor(() => (gw!.output().match(/"msg":"listening"/g) ?? []).length === 2, 'both workers to listen');
    const pids = new Set<number>();
    for (let i = 0; i < 40 && pids.size < 2; i++) pids.add(await statsPid(gw.url));
    expect(pids.size).to.equal(2);
    expect(pids.has(gw.process.pid!)).to.equal(false);

    // Fresh connections land on either worker: whichever parks the poll, a send through any wakes it.
    const start = await poll(gw.url, TEST_API_KEY, { streams: 'cl:1', timeout: 0 });
    const pending = poll(gw.url, TEST_API_KEY, { streams: 'cl:1', cursor: start.cursor, timeout: 20 });
    for (let i = 0; i < 3; i++) await sendOk(gw.url, TEST_API_KEY, { stream: 'cl:1', data: i, id: `cl-${i}` });
    const r = await pending;
    expect(r.messages.length).to.be.greaterThan(0);
    const rest = await poll(gw.url, TEST_API_KEY, { streams: 'cl:1', cursor: r.cursor, timeout: 0 });
    expect([...r.messages, ...rest.messages].map((m) => m.data)).to.deep.equal([0, 1, 2]);

    gw.process.kill('SIGTERM');
    expect(await gw.exited).to.equal(0);
  });
});
