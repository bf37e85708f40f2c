import { createServer, request as httpRequest, Agent, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createRequire } from 'node:module';
import { expect } from 'chai';
import Koa from 'koa';
import { withLightFinishWatch } from '../../lib/http/finish-watch.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { untilParked } from '../support/http.js';

/** on-finished as Koa resolves it (Koa's dependency, not ours): what Koa and its middleware watch responses with. */
const onFinished = createRequire(createRequire(import.meta.url).resolve('koa'))('on-finished') as (
  res: ServerResponse,
  listener: (err: unknown, res: ServerResponse) => void,
) => void;

/** Listener counts of a socket, by event. */
function listenerCounts(socket: Socket): { error: number; close: number } {
  return { error: socket.listenerCount('error'), close: socket.listenerCount('close') };
}

/** Resolves with a server's first connection as the server sees it, its listeners counted once Node added its own. */
function firstConnection(server: Server): Promise<{ socket: Socket; atConnection: { error: number; close: number } }> {
  return new Promise((resolve) => server.once('connection', (socket: Socket) => resolve({ socket, atConnection: listenerCounts(socket) })));
}

describe('withLightFinishWatch', function () {
  describe('on the standalone server', function () {
    let gw: TestGateway;
    before(async function () {
      gw = await startGateway();
    });
    after(async function () {
      await gw.shutdown();
    });

    it("adds no listener of its own to a parked poll's socket (on-finished added one 'error' and one 'close')", async function () {
      const token = await gw.token({ sub: 'watch', streams: ['watch:*'] });
      const connected = firstConnection(gw.server);
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const answered = new Promise<string>((resolve, reject) => {
        const req = httpRequest(`${gw.url}/poll?streams=watch:a&timeout=20`, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve(body));
        });
        req.on('error', reject);
        req.end();
      });
      const { socket, atConnection } = await connected;
      await untilParked(gw.url, gw.apiKey, 1);
      const parked = listenerCounts(socket);
      await fetch(`${gw.url}/send`, { method: 'POST', headers: { authorization: `Bearer ${gw.apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ stream: 'watch:a', data: 1 }) });
      expect(JSON.parse(await answered).messages).to.have.length(1);
      agent.destroy();
      // Node's own: one 'close' listener per response on its socket (the response's close), none for 'error'.
      expect(parked).to.deep.equal({ error: atConnection.error, close: atConnection.close + 1 });
    });
  });

  describe('in a Koa app', function () {
    let server: Server;
    let url: string;
    let told: { err: unknown; finished: boolean }[];
    let answered: () => void;

    /**
     * A Koa app whose middleware asks on-finished to watch its response, as Koa middleware does
     * (and Koa itself, for a stream body); /later never answers, like a parked poll.
     */
    async function serve(handle: (app: Koa) => RequestListener): Promise<void> {
      const app = new Koa();
      app.silent = true;
      app.use((ctx) => {
        onFinished(ctx.res, (err, res) => {
          told.push({ err, finished: res.writableFinished });
          answered();
        });
        if (ctx.path === '/later') ctx.respond = false;
        else ctx.body = 'now';
      });
      server = createServer(handle(app));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    }

    beforeEach(function () {
      told = [];
    });
    afterEach(async function () {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });

    it("tells what on-finished was asked to watch once the answer is written", async function () {
      await serve((app) => withLightFinishWatch(app.callback()));
      const toldOnce = new Promise<void>((resolve) => (answered = resolve));
      expect(await (await fetch(`${url}/now`)).text()).to.equal('now');
      await toldOnce;
      expect(told).to.deep.equal([{ err: undefined, finished: true }]);
    });

    it('tells it once when the client leaves before the answer', async function () {
      await serve((app) => withLightFinishWatch(app.callback()));
      const toldOnce = new Promise<void>((resolve) => (answered = resolve));
      const controller = new AbortController();
      const leaving = fetch(`${url}/later`, { signal: controller.signal }).catch(() => undefined);
      await new Promise((resolve) => server.once('request', resolve));
      controller.abort();
      await leaving;
      await toldOnce;
      expect(told).to.deep.equal([{ err: undefined, finished: false }]);
    });

    it("leaves a socket with Node's own listeners while Koa handles its request", async function () {
      const counted: { error: number; close: number }[] = [];
      const counting = (handle: RequestListener): RequestListener => (req, res) => {
        handle(req, res);
        counted.push(listenerCounts(req.socket));
      };
      await serve((app) => counting(withLightFinishWatch(app.callback())));
      const connected = firstConnection(server);
      const toldOnce = new Promise<void>((resolve) => (answered = resolve));
      await (await fetch(`${url}/now`)).text();
      await toldOnce;
      const { atConnection } = await connected;
      expect(counted[0]).to.deep.equal({ error: atConnection.error, close: atConnection.close + 1 });
    });
  });
});
