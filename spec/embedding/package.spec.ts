/**
 * The package as a user gets it: `npm pack` (of the dist already built), installed with koa into
 * an empty host project, running README.md's "Embedding in a Koa app" block verbatim, and a
 * TypeScript host type-checked against the installed declarations.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { WsClient } from '../support/clients.js';
import { TEST_API_KEY, TEST_SECRET } from '../support/gateway.js';
import { poll, sendOk, uniqueStream, untilParked } from '../support/http.js';
import { freePort } from '../support/ports.js';
import { sharedRedis } from '../support/redis.js';
import { waitFor } from '../support/wait.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');

/** The first ```js block of the README section, as written; throws when the section or block is missing. */
function embeddingExample(readme: string): string {
  const section = /^## Embedding in a Koa app\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(readme);
  if (!section) throw new Error('README.md has no "## Embedding in a Koa app" section');
  const block = /^```(?:js|javascript)\n([\s\S]*?)^```$/m.exec(section[1]!);
  if (!block) throw new Error('README.md "Embedding in a Koa app" has no ```js block');
  return block[1]!;
}

// Exercises every public type a TypeScript host touches; an unused @ts-expect-error fails too.
const TYPESCRIPT_HOST = `import { createServer } from 'node:http';
import Koa from 'koa';
import { createGateway, ConfigError, GatewayError, type AttachOptions, type Config, type Gateway, type GatewayOptions, type MiddlewareOptions } from 'pollgate';

const options: GatewayOptions = { auth: { apiKeys: ['k'.repeat(20)], secret: 's'.repeat(40) }, redis: { url: process.env.REDIS_URL }, mount: '/rt' };
const gateway: Gateway = await createGateway(options);
const config: Config = gateway.config;
const app = new Koa();
const strict: MiddlewareOptions = { fallthrough: false };
app.use(gateway.middleware());
app.use(gateway.middleware(strict));
const server = createServer(app.callback());
const attach: AttachOptions = { fallthrough: true };
gateway.attach(server, attach);
// @ts-expect-error unknown keys are rejected by the types as well as at run time
await createGateway({ redis: { uri: 'redis://127.0.0.1:6379' } });
try {
  await gateway.close();
} catch (err) {
  if (err instanceof ConfigError || err instanceof GatewayError) console.log(err.message, config.mount);
}
`;

interface Child {
  process: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnNode(args: string[], cwd: string, env: Record<string, string>): Child {
  const child = spawn(process.execPath, args, { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { process: child, output: () => out, exited };
}

async function stop(child: Child | undefined): Promise<void> {
  if (!child) return;
  if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
  await child.exited;
}

/** Resolves once `url` answers at all; fails at once, with its output, if the process exits first. */
async function untilServing(child: Child, url: string): Promise<void> {
  await waitFor(async () => {
    if (child.process.exitCode !== null) throw new Error(`exited with ${child.process.exitCode} before serving:\n${child.output()}`);
    return fetch(url).then((res) => res.arrayBuffer()).then(() => true, () => false);
  }, `${url} to answer`);
}

describe('the npm package in a host project', function () {
  this.timeout(120_000);
  let dir: string;
  let packed: string[];
  let app: Child | undefined;
  let tsc: Child | undefined;
  let url: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pollgate-package-'));
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT });
    const [pack] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
    packed = pack!.files.map((f) => f.path);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'pollgate-host', private: true, type: 'module' }));
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', `./${pack!.filename}`, 'koa', '@types/node@20'], { cwd: dir });
    writeFileSync(join(dir, 'app.js'), embeddingExample(readFileSync(join(ROOT, 'README.md'), 'utf8')));
    writeFileSync(join(dir, 'host.ts'), TYPESCRIPT_HOST);
    // The slowest step: type-checked while the app runs.
    tsc = spawnNode([TSC, '--noEmit', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--strict', '--skipLibCheck', 'false', '--skipDefaultLibCheck', '--types', 'node', 'host.ts'], dir, {});
    const redis = await sharedRedis();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    app = spawnNode(['app.js'], dir, {
      PORT: String(port),
      POLLGATE_API_KEYS: `${TEST_API_KEY},another-key-0123456789`,
      POLLGATE_SECRET: TEST_SECRET,
      // The example keeps pollgate's default key prefix: only a Redis this run started may take it.
      ...(redis.owned ? { REDIS_URL: redis.url } : {}),
    });
    await untilServing(app, `${url}/hello`);
  });

  after(async () => {
    await Promise.all([stop(app), stop(tsc)]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('packs the compiled library with its declarations, the static files, config and docs, and nothing else', () => {
    const allowed = /^(README\.md|LICENSE|package\.json|config\/[\w.-]+\.json|docs\/[\w.-]+\.(md|json)|static\/[\w.-]+|dist\/lib\/[\w/.-]+\.(js|d\.ts|lua))$/;
    expect(packed.filter((p) => !allowed.test(p))).to.deep.equal([]);
    // Declarations for untyped dependencies (lib/types) compile to nothing.
    const sources = readdirSync(join(ROOT, 'lib'), { recursive: true, encoding: 'utf8' }).filter((p) => (p.endsWith('.ts') && !p.endsWith('.d.ts')) || p.endsWith('.lua'));
    for (const source of sources) {
      const out = join('dist/lib', source).replace(/\.ts$/, '');
      for (const file of source.endsWith('.lua') ? [out] : [`${out}.js`, `${out}.d.ts`]) expect(packed).to.include(file);
    }
    for (const file of ['static/pollgate.js', 'static/index.html', 'config/default.json', 'config/production.json']) expect(packed).to.include(file);
  });

  it("runs the README's example verbatim: /rt/send, /rt/poll, the host's route, /rt/pollgate.js, a WebSocket on /rt/ws", async () => {
    const rt = `${url}/rt`;
    const stream = uniqueStream();
    await sendOk(rt, TEST_API_KEY, { stream, data: 'from the package' });
    const polled = await poll(rt, TEST_API_KEY, { streams: stream, since: 'earliest', timeout: 0 });
    expect(polled.messages.map((m) => m.data)).to.deep.equal(['from the package']);

    const hello = await fetch(`${url}/hello`);
    expect(await hello.json()).to.deep.equal({ hello: 'from the host app' });
    expect(hello.headers.get('x-request-id')).to.equal(null);

    const client = await fetch(`${rt}/pollgate.js`);
    expect(client.status).to.equal(200);
    expect(await client.text()).to.include('Pollgate');

    const ws = await WsClient.open(rt, { token: TEST_API_KEY });
    try {
      ws.send({ type: 'subscribe', streams: [stream], since: 'earliest', ref: 'pkg' });
      await ws.next('subscribed', (f) => f.ref === 'pkg');
      const got = await ws.messages(1);
      expect(got.messages.map((m) => m.data)).to.deep.equal(['from the package']);
    } finally {
      await ws.close();
    }
  });

  it('on SIGTERM answers a parked poll with its cursor unchanged, closes a WebSocket with 1001, and exits 0', async () => {
    const rt = `${url}/rt`;
    const stream = uniqueStream();
    const { cursor } = await poll(rt, TEST_API_KEY, { streams: stream, timeout: 0 });
    const parked = poll(rt, TEST_API_KEY, { streams: stream, cursor, timeout: 55 });
    await untilParked(rt, TEST_API_KEY, 1);
    const ws = await WsClient.open(rt, { token: TEST_API_KEY });
    try {
      app!.process.kill('SIGTERM');
      expect(await parked).to.deep.equal({ messages: [], cursor });
      expect((await ws.closed).code).to.equal(1001);
      const { code, signal } = await app!.exited;
      expect({ code, signal }, app!.output()).to.deep.equal({ code: 0, signal: null });
    } finally {
      await ws.close();
    }
  });

  it('type-checks a TypeScript host against the installed declarations (strict, no skipLibCheck)', async () => {
    const { code } = await tsc!.exited;
    expect(code, tsc!.output()).to.equal(0);
  });
});
