/**
 * Crash resistance of the WebSocket path: fast-check writes raw frames after a real handshake
 * (invalid JSON, binary, invalid UTF-8, RSV bits, reserved opcodes, unmasked frames, lying
 * lengths, fragments, control frames, truncated frames followed by a reset) and resets
 * connections mid-upgrade, at a gateway in a child process. It must stay up, log no unexpected
 * error, and keep serving a WebSocket canary throughout.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import { spawnGateway, TEST_API_KEY, type ChildGateway } from '../support/gateway.js';
import { WsClient } from '../support/clients.js';
import { sendOk } from '../support/http.js';

const RUNS = 1500;
const TIME_LIMIT_MS = 20_000;

/** `arb` once in `n` cases, otherwise undefined. */
function sometimes<T>(arb: fc.Arbitrary<T>, n: number): fc.Arbitrary<T | undefined> {
  return fc.oneof({ weight: n - 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });
}

interface RawFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
  /** Claim this length instead of the real one (a lie the parser must survive). */
  claimed?: number;
}

interface WsCase {
  token: 'query' | 'none' | 'bad';
  /** Reset after this fraction of the handshake request instead of completing it. */
  resetInHandshake?: number;
  frames: RawFrame[];
  /** Cut the last frame's bytes to this fraction, then reset. */
  truncateLast?: number;
}

function encodeFrame(f: RawFrame): Buffer {
  const length = f.claimed ?? f.payload.length;
  const head: number[] = [(f.fin ? 0x80 : 0) | ((f.rsv & 7) << 4) | (f.opcode & 0x0f)];
  const mask = f.masked ? 0x80 : 0;
  let ext = Buffer.alloc(0);
  if (length < 126) head.push(mask | length);
  else if (length < 65536) {
    head.push(mask | 126);
    ext = Buffer.alloc(2);
    ext.writeUInt16BE(length);
  } else {
    head.push(mask | 127);
    ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(BigInt(length));
  }
  if (!f.masked) return Buffer.concat([Buffer.from(head), ext, f.payload]);
  const key = randomBytes(4);
  const body = Buffer.from(f.payload.map((b, i) => b ^ key[i % 4]!));
  return Buffer.concat([Buffer.from(head), ext, key, body]);
}

function caseArbitrary(): fc.Arbitrary<WsCase> {
  const text = fc.oneof(
    fc.constantFrom(
      '{"type":"subscribe","streams":["room:1"],"ref":1}',
      '{"type":"subscribe","streams":["room:1/../x","r\u043eom:1"],"ref":"x"}',
      '{"type":"unsubscribe","streams":["room:1"]}',
      '{"type":"send","stream":"room:fuzz","data":{"__proto__":{"polluted":1}},"ref":2}',
      '{"type":"send","stream":"room:fuzz","data":1e400}',
      `{"type":"auth","token":"${TEST_API_KEY}"}`,
      '{"type":"auth","token":"a.b.c"}',
      '{"type":{"toString":"x"}}',
      '{"__proto__":{"type":"subscribe"}}',
      '{"type":"subscribe","streams":' + JSON.stringify(Array.from({ length: 500 }, (_, i) => `s${i}`)) + '}',
      `{"type":"subscribe","streams":["room:1"],"cursor":"${'A'.repeat(300)}"}`,
      '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[',
      'null', '"x"', '{}', '',
    ),
    fc.json({ maxDepth: 3 }),
    fc.string({ unit: 'binary', maxLength: 60 }),
  ).map((s) => Buffer.from(s));
  const bytes = fc.oneof(fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)), fc.constantFrom(Buffer.from([0xc3, 0x28]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xff])));
  const frame: fc.Arbitrary<RawFrame> = fc.record({
    fin: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    rsv: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 7 }) }),
    opcode: fc.oneof({ weight: 4, arbitrary: fc.constant(1) }, { weight: 3, arbitrary: fc.constantFrom(0, 2, 8, 9, 10) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 15 }) }),
    masked: fc.oneof({ weight: 6, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    payload: fc.oneof({ weight: 3, arbitrary: text }, { weight: 1, arbitrary: bytes }),
    claimed: sometimes(fc.constantFrom(126, 65535, 2 ** 32, 2 ** 53 - 1), 8),
  });
  return fc.record({
    token: fc.constantFrom('query' as const, 'query' as const, 'none' as const, 'bad' as const),
    resetInHandshake: sometimes(fc.double({ min: 0, max: 1, noNaN: true }), 8),
    frames: fc.array(frame, { minLength: 1, maxLength: 5 }),
    truncateLast: sometimes(fc.double({ min: 0, max: 0.99, noNaN: true }), 6),
  });
}

function handshakeRequest(c: WsCase): string {
  const q = c.token === 'query' ? `?token=${TEST_API_KEY}` : c.token === 'bad' ? '?token=a.b.c' : '';
  return `GET /ws${q} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`;
}

/** Runs one case on a fresh connection; resolves with the handshake status line (or '' if none). */
function run(port: number, c: WsCase): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, '127.0.0.1');
    let reply = '';
    let upgraded = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`case did not finish in 5 s: ${JSON.stringify(c).slice(0, 300)}`));
    }, 5000);
    const finish = () => {
      clearTimeout(timer);
      resolve(reply.split('\r\n')[0] ?? '');
    };
    socket.on('error', () => undefined);
    socket.once('close', finish);
    const request = Buffer.from(handshakeRequest(c));
    socket.once('connect', () => {
      if (c.resetInHandshake !== undefined) {
        socket.write(request.subarray(0, Math.floor(request.length * c.resetInHandshake)), () => socket.resetAndDestroy());
        return;
      }
      socket.write(request);
    });
    socket.on('data', (d: Buffer) => {
      reply += d.toString('latin1');
      if (upgraded || !reply.includes('\r\n\r\n')) return;
      upgraded = true;
      if (!reply.startsWith('HTTP/1.1 101')) return socket.destroy();
      const frames = c.frames.map(encodeFrame);
      if (c.truncateLast !== undefined) {
        const last = frames.pop()!;
        frames.push(last.subarray(0, Math.floor(last.length * c.truncateLast)));
      }
      socket.write(Buffer.concat(frames), () => {
        // Let the server read what it was sent, then leave abruptly (as a dropped client would).
        setTimeout(() => socket.resetAndDestroy(), c.truncateLast !== undefined ? 0 : 10);
      });
    });
  });
}

describe('crash resistance (fast-check fuzzing of WebSocket frames and upgrades)', function () {
  this.timeout(60_000);
  let child: ChildGateway;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pollgate-wsfuzz-'));
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({
      rateLimits: { sendPerSecond: 0, apiKeySendPerSecond: 0, pollsPerIpPerSecond: 0 },
      limits: { dataBytes: 1024 },
      ws: { maxPayloadBytes: 4096, authTimeoutMs: 200 },
      log: { level: 'warn' },
    }));
    child = await spawnGateway({ POLLGATE_CONFIG: file });
  });
  after(async () => {
    await child?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`survives up to ${RUNS} malformed frame sequences and aborted upgrades, and keeps serving a WebSocket canary`, async function () {
    const canary = await WsClient.open(child.url, { token: TEST_API_KEY });
    await canary.subscribe(['canary:ws']);
    let cases = 0;
    let delivered = 0;
    const statuses = new Map<string, number>();
    try {
      await fc.assert(
        fc.asyncProperty(caseArbitrary(), async (c) => {
          cases++;
          const status = await run(child.port, c);
          statuses.set(status || '(none)', (statuses.get(status || '(none)') ?? 0) + 1);
          expect(status, status).to.not.match(/^HTTP\/1\.1 5/);
          expect(child.process.exitCode, child.output().slice(-2000)).to.equal(null);
          if (cases % 100 === 0) {
            await sendOk(child.url, TEST_API_KEY, { stream: 'canary:ws', data: cases });
            const got = await canary.messages(1);
            expect(got.messages[0]!.data).to.equal(cases);
            delivered++;
          }
        }),
        { numRuns: RUNS, interruptAfterTimeLimit: TIME_LIMIT_MS, endOnFailure: true },
      );
    } finally {
      await canary.close();
    }
    console.log(`      (${cases} cases; handshakes ${JSON.stringify([...statuses])}; canary served ${delivered} times)`);
    expect(cases).to.be.at.least(200);
    expect(delivered).to.be.at.least(2);
    expect(child.process.exitCode).to.equal(null);
    expect((await fetch(`${child.url}/healthz`)).status).to.equal(200);
    const bad = child.output().split('\n').filter((l) => /handshake failed|unexpected error|uncaught|"level":(50|60)/i.test(l));
    expect(bad.slice(0, 5)).to.deep.equal([]);
  });
});
