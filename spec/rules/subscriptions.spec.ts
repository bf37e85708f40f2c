/**
 * What a subscription may read (lib/subscriptions.ts: parseSubscription, assertCanRead, positions),
 * checked the same way on every transport that reads: GET /poll, POST /poll, GET /sse (a JSON error
 * before the stream opens) and a WebSocket `subscribe` frame (an error frame). And the positions a
 * cursor carries mean the same everywhere: a cursor from one transport resumes on each other one
 * (the pairs spec/transports/handoff.spec.ts and websocket.spec.ts do not already walk).
 */
import { expect } from 'chai';
import { CursorCodec } from '../../lib/cursor.js';
import { sendAll } from '../support/clients.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { uniqueStream } from '../support/http.js';
import { Closers, frameError, httpError, openSse, openWs, request, sseEvents, type Seen } from './transports.js';

const MAX_STREAMS = 4;

interface Asked {
  streams: string[];
  cursor?: string;
  since?: string;
}

/** A transport's subscribe, resolving with the refusal it got (rejecting when it was accepted). */
type Refused = (gw: TestGateway, credential: string, asked: Asked, closers: Closers) => Promise<Seen>;

function query(credential: string | undefined, asked: Asked, extra: Record<string, string> = {}): string {
  const q = new URLSearchParams({ streams: asked.streams.join(','), ...extra });
  if (credential) q.set('token', credential);
  if (asked.cursor !== undefined) q.set('cursor', asked.cursor);
  if (asked.since !== undefined) q.set('since', asked.since);
  return q.toString();
}

async function refusal(res: Response, what: string): Promise<Seen> {
  if (res.status === 200) {
    await res.body?.cancel();
    throw new Error(`${what} accepted the subscription`);
  }
  expect(res.headers.get('content-type'), what).to.match(/^application\/json/);
  return httpError(res);
}

const REFUSERS: Record<string, Refused> = {
  'GET /poll': async (gw, credential, asked) =>
    refusal(await fetch(`${gw.url}/poll?${query(undefined, asked, { timeout: '0' })}`, { headers: { authorization: `Bearer ${credential}` } }), 'GET /poll'),
  'POST /poll': async (gw, credential, asked) =>
    refusal(
      await fetch(`${gw.url}/poll`, {
        method: 'POST',
        headers: { authorization: `Bearer ${credential}`, 'content-type': 'application/json' },
        body: JSON.stringify({ ...asked, timeout: 0 }),
      }),
      'POST /poll',
    ),
  'GET /sse': async (gw, credential, asked, closers) => refusal(await openSse(gw.url, query(credential, asked), {}, closers), 'GET /sse'),
  'GET /sse with Last-Event-ID': async (gw, credential, asked, closers) => {
    const headers: Record<string, string> = asked.cursor === undefined ? {} : { 'last-event-id': asked.cursor };
    return refusal(await openSse(gw.url, query(credential, { ...asked, cursor: undefined }), headers, closers), 'GET /sse (Last-Event-ID)');
  },
  'a WebSocket subscribe frame': async (gw, credential, asked, closers) => {
    const reply = await request(await openWs(gw.url, credential, closers), 'subscribe', { ...asked });
    if (reply.type !== 'error') throw new Error(`the WebSocket accepted the subscription: ${JSON.stringify(reply)}`);
    return frameError(reply);
  },
};

interface BadSubscription {
  what: string;
  /** `real` is a cursor this gateway issued for [room:a, room:b]. */
  asked(real: string, gw: TestGateway): Asked;
  status: number;
  code: string;
}

function changeOneChar(cursor: string): string {
  const i = Math.floor(cursor.length / 2);
  return cursor.slice(0, i) + (cursor[i] === 'A' ? 'B' : 'A') + cursor.slice(i + 1);
}

const BAD: BadSubscription[] = [
  { what: 'a since other than now or earliest', asked: () => ({ streams: ['room:a'], since: 'yesterday' }), status: 400, code: 'bad_request' },
  { what: 'a cursor with one character changed', asked: (real) => ({ streams: ['room:a', 'room:b'], cursor: changeOneChar(real) }), status: 400, code: 'invalid_cursor' },
  { what: 'a cursor that is not one', asked: () => ({ streams: ['room:a'], cursor: 'not-a-cursor!' }), status: 400, code: 'invalid_cursor' },
  {
    what: 'a cursor signed with another secret',
    asked: (real, gw) => ({ streams: ['room:a', 'room:b'], cursor: new CursorCodec('another-secret-0123456789abcdefghijklmnop').encode(gw.cursors.decode(real, ['room:a', 'room:b'])) }),
    status: 400,
    code: 'invalid_cursor',
  },
  { what: 'a stream the token may not read', asked: () => ({ streams: ['room:a', 'secret:1'] }), status: 403, code: 'forbidden' },
  { what: `more than ${MAX_STREAMS} streams`, asked: () => ({ streams: ['room:1', 'room:2', 'room:3', 'room:4', 'room:5'] }), status: 400, code: 'bad_request' },
  { what: 'a stream name outside the grammar', asked: () => ({ streams: ['room:a', 'room:{a}'] }), status: 400, code: 'bad_request' },
  { what: 'no streams', asked: () => ({ streams: [] }), status: 400, code: 'bad_request' },
];

describe('what a subscription may read, on every transport (rules: lib/subscriptions.ts)', function () {
  const closers = new Closers();
  let gw: TestGateway;
  afterEach(() => closers.closeAll());

  describe('a bad subscription gets the same answer everywhere', function () {
    let token: string;
    let real: string;
    before(async () => {
      // One limit for all: poll.maxStreams for /poll and /sse, ws.maxSubscriptions for a subscribe frame.
      gw = await startGateway({ poll: { maxStreams: MAX_STREAMS }, ws: { maxSubscriptions: MAX_STREAMS } });
      token = await gw.token({ sub: 'reader', streams: ['room:*'] });
      await sendAll(gw.url, gw.apiKey, 'room:a', ['m1']);
      const res = await fetch(`${gw.url}/poll?streams=room:a,room:b&since=earliest&timeout=0`, { headers: { authorization: `Bearer ${gw.apiKey}` } });
      real = ((await res.json()) as { cursor: string }).cursor;
    });
    after(() => gw.shutdown());

    for (const bad of BAD) {
      it(`refuses ${bad.what} with ${bad.status} ${bad.code} on ${Object.keys(REFUSERS).join(', ')}`, async function () {
        const asked = bad.asked(real, gw);
        const seen: Record<string, Seen> = {};
        for (const [name, refused] of Object.entries(REFUSERS)) {
          if (name.includes('Last-Event-ID') && asked.cursor === undefined) continue;
          seen[name] = await refused(gw, token, asked, closers);
        }
        const first = seen['GET /poll']!;
        expect(first).to.include({ status: bad.status, code: bad.code });
        for (const [name, s] of Object.entries(seen)) {
          expect(s, name).to.deep.equal(name.startsWith('a WebSocket') ? { code: first.code, message: first.message } : first);
        }
        expect(gw.registry.size, 'no waiter left behind').to.equal(0);
      });
    }

    it('accepts the real cursor everywhere (the cases above fail for their fault alone)', async function () {
      const fine = { streams: ['room:a', 'room:b'], cursor: real };
      for (const [name, refused] of Object.entries(REFUSERS)) {
        let error: unknown;
        await refused(gw, token, fine, closers).catch((err: unknown) => (error = err));
        expect(String(error), name).to.match(/accepted the subscription/);
      }
    });
  });

  describe('a cursor from one transport resumes on another', function () {
    before(async () => {
      gw = await startGateway();
    });
    after(() => gw.shutdown());

    interface Read {
      data: unknown[];
      cursor: string;
    }
    type Reader = (streams: string[], start: { cursor?: string; since?: string }, n: number) => Promise<Read>;

    const poll = async (res: Response): Promise<Read> => {
      const body = (await res.json()) as { messages: { data: unknown }[]; cursor: string };
      if (res.status !== 200) throw new Error(`/poll answered ${res.status}: ${JSON.stringify(body)}`);
      return { data: body.messages.map((m) => m.data), cursor: body.cursor };
    };
    const sse = async (res: Response, n: number): Promise<Read> => {
      const messages = (await sseEvents(res, n)).filter((e) => e.type === 'message');
      return { data: messages.map((e) => JSON.parse(e.data).data), cursor: messages.at(-1)!.id! };
    };
    const READERS: Record<string, Reader> = {
      'GET /poll': async (streams, start) =>
        poll(await fetch(`${gw.url}/poll?${query(undefined, { streams, ...start }, { timeout: '0' })}`, { headers: { authorization: `Bearer ${gw.apiKey}` } })),
      'POST /poll': async (streams, start) =>
        poll(
          await fetch(`${gw.url}/poll`, {
            method: 'POST',
            headers: { authorization: `Bearer ${gw.apiKey}`, 'content-type': 'application/json' },
            body: JSON.stringify({ streams, ...start, timeout: 0 }),
          }),
        ),
      WebSocket: async (streams, start, n) => {
        const c = await openWs(gw.url, gw.apiKey, closers);
        const reply = await request(c, 'subscribe', { streams, ...start });
        if (reply.type !== 'subscribed') throw new Error(`subscribe refused: ${JSON.stringify(reply)}`);
        const got = await c.messages(n);
        return { data: got.messages.map((m) => m.data), cursor: got.cursor };
      },
      'SSE ?cursor=': async (streams, start, n) => sse(await openSse(gw.url, query(gw.apiKey, { streams, ...start }), {}, closers), n),
      'SSE Last-Event-ID': async (streams, start, n) =>
        sse(await openSse(gw.url, query(gw.apiKey, { streams, since: start.since }), start.cursor ? { 'last-event-id': start.cursor } : {}, closers), n),
    };
    // Walked elsewhere: GET /poll -> WebSocket -> SSE ?cursor= -> WebSocket -> SSE -> GET /poll (handoff.spec.ts),
    // WebSocket -> GET /poll (websocket.spec.ts), SSE -> its own Last-Event-ID reconnect (sse.spec.ts).
    const PAIRS: [string, string][] = [
      ['GET /poll', 'POST /poll'],
      ['GET /poll', 'SSE ?cursor='],
      ['GET /poll', 'SSE Last-Event-ID'],
      ['POST /poll', 'GET /poll'],
      ['POST /poll', 'WebSocket'],
      ['POST /poll', 'SSE ?cursor='],
      ['POST /poll', 'SSE Last-Event-ID'],
      ['WebSocket', 'POST /poll'],
      ['WebSocket', 'SSE Last-Event-ID'],
      ['SSE ?cursor=', 'POST /poll'],
    ];

    for (const [from, to] of PAIRS) {
      it(`resumes on ${to} from a ${from} cursor with the next message of each stream`, async function () {
        const [a, b] = [uniqueStream(), uniqueStream()];
        await sendAll(gw.url, gw.apiKey, a, ['m1']);
        const first = await READERS[from]!([a, b], { since: 'earliest' }, 1);
        expect(first.data).to.deep.equal(['m1']);
        // One message on each stream, so the cursor must carry both positions.
        await sendAll(gw.url, gw.apiKey, b, ['m2']);
        await sendAll(gw.url, gw.apiKey, a, ['m3']);
        const next = await READERS[to]!([a, b], { cursor: first.cursor }, 2);
        expect([...next.data].sort()).to.deep.equal(['m2', 'm3']);
      });
    }
  });
});
