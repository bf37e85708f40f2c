/**
 * Server hooks (lib/hooks.ts): createGateway's authorize callback refuses and allows on every
 * transport (poll, SSE, WebSocket subscribe and send, /send, /history), onPublish hears stored
 * messages, onConnect/onDisconnect hear sessions; the standalone HTTP hook (hooks.url) decides the
 * same way, fails closed with 503 hook_unavailable on a timeout (or open with failOpen), and its
 * allows are cached for hooks.allowCacheSeconds.
 */
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import Koa from 'koa';
import { createGateway, type Gateway } from '../lib/index.js';
import { HOOK_SIGNATURE_HEADER, Hooks, hookSignature, hookTarget, type AuthorizeRequest, type ConnectionEvent, type PublishedMessage } from '../lib/hooks.js';
import { loadConfig } from '../lib/config.js';
import { startGateway, TEST_API_KEY, TEST_SECRET, type TestGateway } from './support/gateway.js';
import { SseClient, WsClient, until } from './support/clients.js';
import { LogCapture, expectFetchError } from './support/http.js';
import { freePort } from './support/ports.js';
import { configuredUrlForLogs } from '../lib/log.js';
import { pino } from 'pino';
import type { Principal } from '../lib/auth.js';
import { HookUnavailableError } from '../lib/errors.js';

const json = { 'content-type': 'application/json' };

/** The outcome of one read or write on each transport, as status codes (WebSocket: error code or "ok"). */
async function onEveryTransport(url: string, token: string, stream: string): Promise<Record<string, string | number>> {
  const auth = { Authorization: `Bearer ${token}` };
  const out: Record<string, string | number> = {};
  out.poll = (await fetch(`${url}/poll?streams=${stream}&timeout=0`, { headers: auth })).status;
  const sse = await fetch(`${url}/sse?streams=${stream}`, { headers: auth });
  out.sse = sse.status;
  await sse.body?.cancel();
  out.history = (await fetch(`${url}/history?stream=${stream}&last=1`, { headers: auth })).status;
  out.send = (await fetch(`${url}/send`, { method: 'POST', headers: { ...auth, ...json }, body: JSON.stringify({ stream, data: 1 }) })).status;
  const ws = await WsClient.open(url, { token });
  try {
    ws.send({ type: 'subscribe', streams: [stream], ref: 's' });
    const sub = await ws.reply('s');
    out.wsSubscribe = sub.type === 'error' ? sub.code : 'ok';
    ws.send({ type: 'send', stream, data: 2, ref: 'w' });
    const sent = await ws.reply('w');
    out.wsSend = sent.type === 'error' ? sent.code : 'ok';
  } finally {
    await ws.close();
  }
  return out;
}

describe('server hooks', () => {
  describe('embedded (createGateway callbacks)', () => {
    let gateway: Gateway;
    let server: Server;
    let url: string;
    const asked: AuthorizeRequest[] = [];
    const published: PublishedMessage[] = [];
    const events: Array<{ kind: string } & ConnectionEvent> = [];

    before(async () => {
      gateway = await createGateway({
        auth: { apiKeys: [TEST_API_KEY], secret: TEST_SECRET },
        log: { level: 'silent' },
        rateLimits: { sendPerSecond: 0 },
        hooks: { allowCacheSeconds: 0 },
        async authorize(req) {
          asked.push(req);
          return !req.stream.startsWith('secret:');
        },
        onPublish: (m) => void published.push(m),
        onConnect: (e) => void events.push({ kind: 'connect', ...e }),
        onDisconnect: (e) => void events.push({ kind: 'disconnect', ...e }),
      });
      const app = new Koa();
      app.use(gateway.middleware());
      server = app.listen(0, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      gateway.attach(server);
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(async () => {
      server.close();
      await gateway.close();
      server.closeAllConnections();
    });

    it('refuses with 403 forbidden (close-free error frames on a WebSocket) on every transport when authorize says no', async () => {
      const token = await gateway.mintToken({ sub: 'eve', streams: ['*'], pub: ['*'], ttlSeconds: 600 });
      expect(await onEveryTransport(url, token, 'secret:1')).to.deep.equal({ poll: 403, sse: 403, history: 403, send: 403, wsSubscribe: 'forbidden', wsSend: 'forbidden' });
      const actions = new Set(asked.filter((r) => r.subject === 'eve').map((r) => `${r.action}/${r.transport}`));
      expect([...actions].sort()).to.deep.equal(['read/http', 'read/poll', 'read/sse', 'read/ws', 'write/http', 'write/ws']);
    });

    it('allows on every transport when authorize says yes, and never asks about API keys', async () => {
      const token = await gateway.mintToken({ sub: 'ann', streams: ['*'], pub: ['*'], ttlSeconds: 600 });
      expect(await onEveryTransport(url, token, 'open:1')).to.deep.equal({ poll: 200, sse: 200, history: 200, send: 200, wsSubscribe: 'ok', wsSend: 'ok' });
      const before = asked.length;
      expect((await fetch(`${url}/poll?streams=secret:2&timeout=0`, { headers: { Authorization: `Bearer ${TEST_API_KEY}` } })).status).to.equal(200);
      expect(asked.length).to.equal(before);
    });

    it('tells onPublish each stored message (not duplicates), and onConnect/onDisconnect each session', async () => {
      const token = await gateway.mintToken({ sub: 'pat', streams: ['*'], pub: ['*'], ttlSeconds: 600 });
      const send = () => fetch(`${url}/send`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, ...json }, body: JSON.stringify({ stream: 'pub:1', data: { n: 1 }, id: 'once' }) });
      await send();
      await send();
      expect(published.filter((m) => m.subject === 'pat')).to.deep.equal([{ stream: 'pub:1', seq: 1, id: 'once', subject: 'pat', data: { n: 1 }, transport: 'http' }]);
      const es = new SseClient(`${url}/sse?streams=pub:1&token=${token}`);
      await es.next('ready');
      expect(events.filter((e) => e.subject === 'pat')).to.deep.equal([{ kind: 'connect', subject: 'pat', transport: 'sse', streams: ['pub:1'] }]);
      es.close();
      await until(() => events.some((e) => e.subject === 'pat' && e.kind === 'disconnect'));
      expect(events.find((e) => e.subject === 'pat' && e.kind === 'disconnect')).to.include({ transport: 'sse', reason: 'closed' });
    });

    it('ends a subject\'s connections with gateway.disconnect(), and tells onDisconnect why', async () => {
      const token = await gateway.mintToken({ sub: 'kim', streams: ['*'], pub: ['*'], ttlSeconds: 600 });
      const ws = await WsClient.open(url, { token });
      await ws.subscribe(['k:1']);
      expect(await gateway.disconnect('kim')).to.deep.equal({ sub: 'kim', connections: 1 });
      expect((await ws.closed).code).to.equal(4403);
      expect(events.filter((e) => e.subject === 'kim').map((e) => [e.kind, e.transport, e.reason])).to.deep.equal([
        ['connect', 'ws', undefined],
        ['disconnect', 'ws', 'disconnected'],
      ]);
    });

    it('refuses options that are not functions, and authorize together with hooks.url', async () => {
      const base = { auth: { apiKeys: [TEST_API_KEY], secret: TEST_SECRET }, log: { level: 'silent' as const } };
      await createGateway({ ...base, authorize: 'yes' as never }).then(() => expect.fail('accepted'), (err: Error) => expect(err.message).to.match(/authorize: must be a function/));
      await createGateway({ ...base, authorize: () => true, hooks: { url: 'http://127.0.0.1:1/hook' } }).then(
        () => expect.fail('accepted'),
        (err: Error) => expect(err.message).to.match(/authorize and hooks.url/),
      );
    });
  });

  describe('standalone (HTTP hook, hooks.url)', () => {
    let hook: Server;
    let hookUrl: string;
    const bodies: any[] = [];
    /** The signature header of each request, beside its body text. */
    const signed: { header: string | undefined; body: string }[] = [];
    /** The Authorization header of each request. */
    const authorizations: (string | undefined)[] = [];
    /** What the hook does with the next requests. */
    let behave: 'allow' | 'deny' | 'hang' | 'error' = 'allow';
    const hanging: Array<() => void> = [];

    before(async () => {
      hook = createServer((req, res) => {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          bodies.push(JSON.parse(body));
          signed.push({ header: req.headers[HOOK_SIGNATURE_HEADER] as string | undefined, body });
          authorizations.push(req.headers.authorization);
          if (behave === 'hang') return hanging.push(() => res.end());
          if (behave === 'error') return res.writeHead(500).end();
          res.writeHead(200, json).end(JSON.stringify({ allow: behave === 'allow' }));
        });
      });
      await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
      hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/authorize`;
    });
    after(async () => {
      for (const h of hanging.splice(0)) h();
      hook.closeAllConnections();
      await new Promise((r) => hook.close(r));
    });

    async function gatewayWith(hooks: Record<string, unknown>): Promise<TestGateway> {
      return startGateway({ hooks: { url: hookUrl, ...hooks } });
    }

    it('POSTs each decision as JSON and answers the client by the reply, on every transport', async () => {
      const gw = await gatewayWith({ allowCacheSeconds: 0 });
      try {
        const token = await gw.token({ sub: 'hal', streams: ['*'], pub: ['*'] });
        behave = 'deny';
        expect(await onEveryTransport(gw.url, token, 'h:1')).to.deep.equal({ poll: 403, sse: 403, history: 403, send: 403, wsSubscribe: 'forbidden', wsSend: 'forbidden' });
        behave = 'allow';
        expect(await onEveryTransport(gw.url, token, 'h:1')).to.deep.equal({ poll: 200, sse: 200, history: 200, send: 200, wsSubscribe: 'ok', wsSend: 'ok' });
        expect(bodies.at(-1)).to.deep.equal({ type: 'authorize', subject: 'hal', stream: 'h:1', action: 'write', transport: 'ws' });
        behave = 'error';
        expect((await fetch(`${gw.url}/poll?streams=h:1&timeout=0`, { headers: { Authorization: `Bearer ${token}` } })).status).to.equal(403);
      } finally {
        await gw.shutdown();
      }
    });

    it('signs each request with hooks.secret: HMAC-SHA256 of "<unix seconds>.<body>", which the application can check', async () => {
      const secret = 'hook-secret-0123456789abcdef';
      const gw = await gatewayWith({ allowCacheSeconds: 0, secret });
      const unsigned = await gatewayWith({ allowCacheSeconds: 0 });
      try {
        const token = await gw.token({ sub: 'sig', streams: ['*'] });
        behave = 'allow';
        signed.length = 0;
        const before = Math.floor(Date.now() / 1000);
        expect((await fetch(`${gw.url}/poll?streams=s:1&timeout=0`, { headers: { Authorization: `Bearer ${token}` } })).status).to.equal(200);
        const [{ header, body }] = signed.splice(0);
        const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
        expect(m, header).to.not.equal(null);
        const t = Number(m![1]);
        expect(t).to.be.within(before, Math.floor(Date.now() / 1000));
        // What the application computes from the body it received and its copy of the secret.
        expect(m![2]).to.equal(createHmac('sha256', secret).update(`${t}.${body}`).digest('hex'));
        expect(JSON.parse(body)).to.deep.equal({ type: 'authorize', subject: 'sig', stream: 's:1', action: 'read', transport: 'poll' });
        // The body altered, or signed under another secret, does not check.
        expect(hookSignature(secret, t, body.replace('s:1', 's:2'))).to.not.equal(header);
        expect(hookSignature('another-secret-0123456789', t, body)).to.not.equal(header);
        const token2 = await unsigned.token({ sub: 'sig', streams: ['*'] });
        expect((await fetch(`${unsigned.url}/poll?streams=s:1&timeout=0`, { headers: { Authorization: `Bearer ${token2}` } })).status).to.equal(200);
        expect(signed.splice(0).map((r) => r.header)).to.deep.equal([undefined]);
      } finally {
        await Promise.all([gw.shutdown(), unsigned.shutdown()]);
      }
    });

    it('refuses a hooks.secret shorter than 16 characters', async () => {
      expect(() => loadConfig({ env: {}, files: false, overrides: { hooks: { url: hookUrl, secret: 'short' } } })).to.throw(/hooks.secret/);
    });

    it('fails closed with 503 hook_unavailable and Retry-After after hooks.timeoutMs, or open with failOpen', async () => {
      behave = 'hang';
      const closed = await gatewayWith({ timeoutMs: 100 });
      const open = await gatewayWith({ timeoutMs: 100, failOpen: true });
      try {
        const token = await closed.token({ sub: 'tim', streams: ['*'] });
        const started = Date.now();
        const res = await fetch(`${closed.url}/poll?streams=t:1&timeout=0`, { headers: { Authorization: `Bearer ${token}` } });
        expect(Date.now() - started).to.be.within(90, 2000);
        expect(res.headers.get('retry-after')).to.equal('1');
        await expectFetchError(res, 503, 'hook_unavailable');
        const token2 = await open.token({ sub: 'tim', streams: ['*'] });
        expect((await fetch(`${open.url}/poll?streams=t:1&timeout=0`, { headers: { Authorization: `Bearer ${token2}` } })).status).to.equal(200);
        // An allow by failing open is not remembered: the next poll asks again.
        const asked = bodies.length;
        expect((await fetch(`${open.url}/poll?streams=t:1&timeout=0`, { headers: { Authorization: `Bearer ${token2}` } })).status).to.equal(200);
        expect(bodies.length).to.equal(asked + 1);
      } finally {
        behave = 'allow';
        for (const h of hanging.splice(0)) h();
        await Promise.all([closed.shutdown(), open.shutdown()]);
      }
    });

    it('remembers an allow for hooks.allowCacheSeconds, and never a refusal', async () => {
      const gw = await gatewayWith({ allowCacheSeconds: 60 });
      try {
        const token = await gw.token({ sub: 'cat', streams: ['*'] });
        const pollIt = () => fetch(`${gw.url}/poll?streams=c:1&timeout=0`, { headers: { Authorization: `Bearer ${token}` } }).then((r) => r.status);
        behave = 'deny';
        expect([await pollIt(), await pollIt()]).to.deep.equal([403, 403]);
        expect(gw.hooks.calls).to.equal(2);
        behave = 'allow';
        expect([await pollIt(), await pollIt(), await pollIt()]).to.deep.equal([200, 200, 200]);
        expect(gw.hooks.calls).to.equal(3);
      } finally {
        await gw.shutdown();
      }
    });

    it("asks a hook URL with user-info (which fetch refuses) with those as Basic credentials, and logs neither", async () => {
      const capture = new LogCapture();
      const withUser = hookUrl.replace('http://', 'http://hook%20user:p%40ss@') + '?key=query-secret';
      const gw = await startGateway({ hooks: { url: withUser, allowCacheSeconds: 0 } }, { log: pino(capture) });
      try {
        const token = await gw.token({ sub: 'uma', streams: ['*'] });
        behave = 'allow';
        expect((await fetch(`${gw.url}/poll?streams=u:1&timeout=0`, { headers: { Authorization: `Bearer ${token}` } })).status).to.equal(200);
        expect(authorizations.at(-1)).to.equal(`Basic ${Buffer.from('hook user:p@ss').toString('base64')}`);
        expect(capture.text).not.to.match(/hook%20user|p%40ss|query-secret/);
      } finally {
        await gw.shutdown();
      }
    });

    it('logs the hook URL without its user-info or query, where the application may keep credentials', async () => {
      const capture = new LogCapture();
      const port = await freePort();
      const url = `http://app-user:app-password@127.0.0.1:${port}/pollgate/authorize?key=query-secret`;
      const hooks = new Hooks({}, { url, secret: '', timeoutMs: 1000, failOpen: false, allowCacheSeconds: 0 }, pino(capture));
      const reader = { kind: 'client', subject: 'leak', canRead: () => true, canWrite: () => true } as unknown as Principal;
      // Nobody listens on the port: the hook fails, and says so in the log.
      const refused = await hooks.assertAllowed(reader, ['s:1'], 'read', 'poll')!.then(() => undefined, (err: unknown) => err);
      expect(refused).to.be.instanceOf(HookUnavailableError);
      const failed = await capture.waitFor((l) => l.msg === 'authorize hook failed');
      const unsigned = await capture.waitFor((l) => String(l.msg).includes('unsigned'));
      for (const line of [failed, unsigned]) expect(line.url).to.equal(`http://[REDACTED]@127.0.0.1:${port}/pollgate/authorize?[REDACTED]`);
      expect(capture.text).not.to.match(/app-user|app-password|query-secret/);
      expect(configuredUrlForLogs('not a url')).to.equal('[unparsable URL]');
      // A user without a password, a password without a user, a broken percent-encoding.
      expect(hookTarget('http://only-user@h.example/a')).to.deep.equal({ url: 'http://h.example/a', authorization: `Basic ${Buffer.from('only-user:').toString('base64')}` });
      expect(hookTarget('http://:only-pass@h.example/a')).to.deep.equal({ url: 'http://h.example/a', authorization: `Basic ${Buffer.from(':only-pass').toString('base64')}` });
      expect(hookTarget('http://a%zz:b@h.example/a?q=1').authorization).to.equal(`Basic ${Buffer.from('a%zz:b').toString('base64')}`);
      expect(hookTarget('https://h.example/a?q=1')).to.deep.equal({ url: 'https://h.example/a?q=1' });
      expect(configuredUrlForLogs('https://hooks.example/authorize')).to.equal('https://hooks.example/authorize');
    });
  });
});
