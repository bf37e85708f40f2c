/**
 * The browser client on npm: `pollgate/client` resolves through package.json's exports to the UMD
 * file for require() and to an ES module wrapper for import, both the same constructor, with the
 * hand-written declarations checked by a strict TypeScript compile of an ESM and a CommonJS user.
 * The package is linked into a temp project (as npm would install it) and `npm pack` lists the files.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');

// Every public name of the declarations, used as a page would; an unused @ts-expect-error fails too.
const ESM_USER = `import Pollgate, { Pollgate as Named } from 'pollgate/client';

const options: Pollgate.Options = { url: 'https://gw.example.com', streams: ['room:1'], getToken: (cb) => cb(null, 't'), share: true, cursor: 'c' };
const pg: Pollgate = new Named(options);
pg.on('message', (m: Pollgate.Message) => console.log(m.stream, m.seq.toFixed(), m.data))
  .on('state', (state: Pollgate.State, previous) => console.log(state, previous))
  .on('transport', (t) => console.log(t === 'shared' || t === 'websocket'))
  .on('gap', (g: Pollgate.Gap) => console.log(g.from - g.to))
  .on('reset', (r) => console.log(r.stream))
  .on('auth_error', (e: Pollgate.ClientError) => pg.setToken(e.code))
  .on('sent', (r: Pollgate.SendResult, m: Pollgate.OutgoingMessage) => console.log(r.seq, m.id))
  .off('error');
const id: string | null = pg.send('room:1', { text: 'hi' }, (err, result) => console.log(err?.status, result?.duplicate));
pg.subscribe('room:2').unsubscribe(['room:1']);
const cursor: string | null = pg.cursor;
console.log(id, cursor, pg.pending().length, pg.streams.length, pg.state, Pollgate.backoff(1, 500, 30000), Pollgate.version, Pollgate.transports['xhr']?.isUsable(''));
pg.close();
// @ts-expect-error an unknown transport
new Pollgate({ token: 't', transport: 'flash' });
// @ts-expect-error an unknown event
pg.on('messages', () => undefined);
`;

const CJS_USER = `import Pollgate = require('pollgate/client');

const pg = new Pollgate({ token: 't', streams: ['a'], transports: ['sse', 'polling'], autoConnect: false });
pg.connect().on('error', (e) => console.log(e.message, e.code));
// @ts-expect-error send takes a stream name first
pg.send({ text: 'hi' });
`;

describe('pollgate/client (the npm entry of the browser client)', function () {
  this.timeout(60_000);
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pollgate-client-'));
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(ROOT, join(dir, 'node_modules/pollgate'), 'dir');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'pollgate-client-user', private: true, type: 'module' }));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is packed: the UMD file, the ES module wrapper, both declarations and the package.json that makes the UMD file CommonJS', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--ignore-scripts', '--json'], { cwd: ROOT });
    const [pack] = JSON.parse(stdout) as { files: { path: string }[] }[];
    const files = pack!.files.map((f) => f.path);
    for (const f of ['static/pollgate.js', 'static/pollgate.mjs', 'static/pollgate.d.ts', 'static/pollgate.d.mts', 'static/package.json']) expect(files).to.include(f);
  });

  it('gives import and require() the same constructor', async () => {
    const script = `import { createRequire } from 'node:module';
const esm = await import('pollgate/client');
const cjs = createRequire(import.meta.url)('pollgate/client');
console.log(JSON.stringify([typeof esm.default, esm.default === cjs, esm.Pollgate === cjs, typeof cjs.backoff, cjs.version]));`;
    writeFileSync(join(dir, 'check.mjs'), script);
    const { stdout } = await run(process.execPath, ['check.mjs'], { cwd: dir });
    expect(JSON.parse(stdout)).to.deep.equal(['function', true, true, 'function', '0.1.0']);
  });

  it('type-checks an ES module user and a CommonJS user against the declarations (strict, no skipLibCheck)', async () => {
    writeFileSync(join(dir, 'esm-user.mts'), ESM_USER);
    writeFileSync(join(dir, 'cjs-user.cts'), CJS_USER);
    const args = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--lib', 'es2022,dom', '--skipLibCheck', 'false', 'esm-user.mts', 'cjs-user.cts'];
    const result = await run(process.execPath, [TSC, ...args], { cwd: dir }).then(
      () => ({ code: 0, out: '' }),
      (err: { code: number; stdout: string }) => ({ code: err.code, out: err.stdout }),
    );
    expect(result, result.out).to.deep.equal({ code: 0, out: '' });
  });
});
