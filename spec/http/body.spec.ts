/**
 * Request bodies: one that arrived whole with its headers and one still on its way are read
 * alike; an empty or whitespace body, one that is not JSON and bytes that are not UTF-8 get their
 * own 400s.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { expect } from 'chai';
import type { Context } from 'koa';
import { bodyLimits, readJsonBody } from '../../lib/http/body.js';
import { countTimeouts } from '../support/timeouts.js';
import { BadRequestError } from '../../lib/errors.js';

/** What the handler saw of one request. */
interface Seen {
  completeAtStart: boolean;
  buffered?: string;
  result?: unknown;
  error?: string;
  dataListeners: number;
}

describe('request bodies', function () {
  let server: Server;
  let port: number;
  let seen: Promise<Seen>;
  /** Resolves once the handler has looked at the request and starts reading its body. */
  let looked: Promise<void>;
  let sockets: Socket[];

  beforeEach(async function () {
    sockets = [];
    let done!: (s: Seen) => void;
    seen = new Promise((r) => (done = r));
    let lookedAt!: () => void;
    looked = new Promise((r) => (lookedAt = r));
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      void (async () => {
        // The parser hands over the request at its headers; a body in the same segment follows
        // within this turn of the loop, one still on its way does not.
        for (let i = 0; i < 3 && !req.complete; i++) await new Promise((r) => setImmediate(r));
        const out: Seen = { completeAtStart: req.complete, dataListeners: 0 };
        const ctx = { req, res, request: {} } as unknown as Context;
        try {
          lookedAt();
          const pending = readJsonBody(ctx, bodyLimits(1024, 5000));
          out.dataListeners = req.listenerCount('data');
          out.result = await pending;
        } catch (err) {
          out.error = (err as Error).message;
        }
        res.end('ok');
        done(out);
      })();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterEach(async function () {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });

  function open(): Socket {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    sockets.push(s);
    return s;
  }
  const head = (length: number) => `POST /send HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;

  it('reads a body that arrived with its headers', async function () {
    const body = JSON.stringify({ stream: 'a', data: 'é' });
    open().write(head(Buffer.byteLength(body)) + body);
    const s = await seen;
    expect(s.completeAtStart).to.equal(true);
    expect(s.result).to.deep.equal({ stream: 'a', data: 'é' });
  });

  it('reads a body still on its way as it comes', async function () {
    const body = JSON.stringify({ stream: 'b', data: 2 });
    const socket = open();
    socket.write(head(Buffer.byteLength(body)));
    // The handler has looked (and found nothing complete) before the body is sent.
    await looked;
    socket.write(body);
    const s = await seen;
    expect(s.completeAtStart).to.equal(false);
    expect(s.dataListeners).to.equal(1);
    expect(s.result).to.deep.equal({ stream: 'b', data: 2 });
  });

  it('refuses a body whose client left halfway with a 400, once, its deadline done', async function () {
    const limits = bodyLimits(1024, 5000);
    server.removeAllListeners('request');
    const outcome = new Promise<unknown>((resolve) => {
      server.on('request', (req: IncomingMessage, res: ServerResponse) => {
        readJsonBody({ req, res, request: {} } as unknown as Context, limits).then(resolve, resolve);
        // The client leaves once the first piece was read.
        req.once('data', () => socket.destroy());
      });
    });
    const socket = open();
    socket.write(head(100) + '{"stream":"a",');
    const err = (await outcome) as Error;
    expect(err).to.be.instanceOf(BadRequestError);
    expect(err.message).to.match(/^request body could not be read: aborted/);
    expect(limits.deadlines.size).to.equal(0);
  });

  it('refuses a body at once when the request is destroyed without an error, and reads again with the same listeners', async function () {
    const limits = bodyLimits(1024, 5000);
    server.removeAllListeners('request');
    let counts: number[] = [];
    const outcome = new Promise<unknown>((resolve) => {
      server.on('request', (req: IncomingMessage, res: ServerResponse) => {
        const ctx = { req, res, request: {} } as unknown as Context;
        readJsonBody(ctx, limits).then(resolve, resolve);
        // Ours alone on 'data' (this one is taken off as it runs) and on 'end'.
        req.once('data', () => {
          counts = ['data', 'end', 'error', 'close'].map((event) => req.listenerCount(event));
          req.destroy();
        });
      });
    });
    open().write(head(100) + '{"stream":"a",');
    const err = (await outcome) as Error;
    expect(err).to.be.instanceOf(BadRequestError);
    expect(err.message).to.match(/closed before its end/);
    expect(limits.deadlines.size).to.equal(0);
    expect(counts.slice(0, 2)).to.deep.equal([1, 1]);
  });

  it('adds no listeners for a read after one that ended', async function () {
    const limits = bodyLimits(8, 5000);
    server.removeAllListeners('request');
    const seen = new Promise<{ first: unknown; second: unknown; data: number }>((resolve) => {
      server.on('request', (req: IncomingMessage, res: ServerResponse) => {
        const ctx = { req, res, request: {} } as unknown as Context;
        void readJsonBody(ctx, limits).then(
          () => undefined,
          async (first: unknown) => {
            const second = readJsonBody(ctx, limits);
            const data = req.listenerCount('data');
            resolve({ first, second: await Promise.race([second.then(() => 'read', () => 'refused'), new Promise((r) => setImmediate(() => r('waiting')))]), data });
            res.destroy();
          },
        );
      });
    });
    // Chunked: no length to refuse up front, so the first read is refused by its cap mid-body.
    const chunk = '{"stream":"over the cap"';
    open().write(`POST /send HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    const { first, second, data } = await seen;
    expect((first as Error).message).to.match(/exceeds 8 bytes/);
    // The second read waits on the paused request, on the one set of listeners.
    expect(second).to.equal('waiting');
    expect(data).to.equal(1);
    limits.deadlines.stop();
  });

  it('400s: empty, whitespace only, not JSON, not UTF-8', async function () {
    const cases: [Buffer, string][] = [
      [Buffer.from('   \n'), 'request body is empty: send a JSON object'],
      [Buffer.from('{"a":'), 'request body is not valid JSON'],
      [Buffer.from([0x7b, 0xff, 0x7d]), 'request body is not valid UTF-8'],
    ];
    for (const [body, message] of cases) {
      let done!: (s: Seen) => void;
      seen = new Promise((r) => (done = r));
      server.removeAllListeners('request');
      server.on('request', (req: IncomingMessage, res: ServerResponse) => {
        readJsonBody({ req, res, request: {} } as unknown as Context, bodyLimits(1024, 5000)).then(
          (result) => done({ completeAtStart: req.complete, result, dataListeners: 0 }),
          (err: Error) => done({ completeAtStart: req.complete, error: err.message, dataListeners: 0 }),
        ).finally(() => res.end());
      });
      const s = open();
      s.write(Buffer.concat([Buffer.from(head(body.length)), body]));
      expect((await seen).error).to.equal(message);
    }
  });

  it('reads bodies under one deadline timer, not a timer each (lib/deadlines.ts)', async function () {
    // A length no other timer in this process has: the Timeouts made for it are the body reads'.
    const limits = bodyLimits(1024, 4321);
    const timers = countTimeouts(4321);
    try {
      server.removeAllListeners('request');
      let read = 0;
      let allRead!: () => void;
      const done = new Promise<void>((r) => (allRead = r));
      server.on('request', (req: IncomingMessage, res: ServerResponse) => {
        void readJsonBody({ req, res, request: {} } as unknown as Context, limits).finally(() => {
          res.end();
          if (++read === 20) allRead();
        });
      });
      const s = open();
      const body = '{"stream":"a","data":1}';
      // Twenty requests, one after the other on one connection.
      for (let i = 0; i < 20; i++) s.write(head(body.length).replace('Host: x', 'Host: x\r\nConnection: keep-alive') + body);
      await done;
      expect(limits.deadlines.size).to.equal(0);
      // A Timeout each (20) without the queue; the queue's own timer, armed once, with it.
      expect(timers.made).to.equal(1);
    } finally {
      timers.stop();
    }
  });

  it('reads every body with the same listeners: no closures made per read (CappedRead)', async function () {
    server.removeAllListeners('request');
    const limits = bodyLimits(1024, 5000);
    const EVENTS = ['data', 'end', 'error', 'close'];
    const listeners: Function[][] = [];
    const after: Function[][] = [];
    const afterLate: unknown[] = [];
    const results: unknown[] = [];
    let allRead!: () => void;
    const done = new Promise<void>((r) => (allRead = r));
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const reading = readJsonBody({ req, res, request: {} } as unknown as Context, limits);
      listeners.push(EVENTS.map((event) => req.listeners(event).at(-1) as Function));
      void reading.then((body) => {
        results.push(body);
        // Over, the read leaves its listeners on the request (no removeListener per read), and
        // they do nothing: a late error or chunk neither throws nor changes what was read.
        after.push(EVENTS.map((event) => req.listeners(event).at(-1) as Function));
        req.emit('data', Buffer.from('junk'));
        req.emit('error', new Error('late'));
        afterLate.push(body);
      }).finally(() => {
        res.end();
        if (results.length === 2) allRead();
      });
    });
    const s = open();
    for (const n of [1, 2]) {
      const body = `{"stream":"a","data":${n}}`;
      s.write(head(body.length).replace('Host: x', 'Host: x\r\nConnection: keep-alive') + body);
    }
    await done;
    expect(results).to.deep.equal([{ stream: 'a', data: 1 }, { stream: 'a', data: 2 }]);
    // Four functions shared by both reads; a closure each per read without CappedRead.
    expect(listeners[0]!.every((f) => typeof f === 'function')).to.equal(true);
    expect(listeners[1]).to.deep.equal(listeners[0]);
    // Still on each request once its read was over, and a late chunk or error changed nothing.
    expect(after).to.deep.equal(listeners);
    expect(afterLate).to.deep.equal(results);
  });

  it("settles with the body's JSON in the turn its end arrives: no async function around the read", async function () {
    server.removeAllListeners('request');
    let done!: (turns: number) => void;
    const counted = new Promise<number>((r) => (done = r));
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      let settled = false;
      const reading = readJsonBody({ req, res, request: {} } as unknown as Context, bodyLimits(1024, 5000));
      void reading.then(() => (settled = true)).finally(() => res.end());
      // Added after the read's own, so it runs right after the read took the body's end.
      req.once('end', () => {
        void (async () => {
          let turns = 0;
          while (!settled) {
            await undefined;
            turns++;
          }
          done(turns);
        })();
      });
    });
    const body = '{"stream":"a","data":1}';
    open().write(head(body.length) + body);
    // One turn for the reaction to the read's promise; an async readJsonBody awaiting it takes two more.
    expect(await counted).to.equal(1);
  });

  it('reads a body that comes in pieces, and refuses a second read of one body at once', async function () {
    server.removeAllListeners('request');
    let firstPiece!: () => void;
    const gotFirst = new Promise<void>((r) => (firstPiece = r));
    let done!: (s: { result?: unknown; second?: string; pieces: number }) => void;
    const outcome = new Promise<{ result?: unknown; second?: string; pieces: number }>((r) => (done = r));
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const ctx = { req, res, request: {} } as unknown as Context;
      let pieces = 0;
      req.on('data', () => {
        if (++pieces === 1) firstPiece();
      });
      const reading = readJsonBody(ctx, bodyLimits(1024, 5000));
      const second = readJsonBody(ctx, bodyLimits(1024, 5000)).then(
        () => 'read twice',
        (err: Error) => err.message,
      );
      void Promise.all([reading, second]).then(([result, refused]) => {
        res.end();
        done({ result, second: refused, pieces });
      });
    });
    const body = JSON.stringify({ stream: 'pieces', data: 'x'.repeat(100) });
    const socket = open();
    socket.write(head(Buffer.byteLength(body)) + body.slice(0, 40));
    await gotFirst;
    socket.write(body.slice(40));
    const s = await outcome;
    expect(s.pieces).to.equal(2);
    expect(s.result).to.deep.equal({ stream: 'pieces', data: 'x'.repeat(100) });
    expect(s.second).to.equal('the request body is already being read');
  });
});
