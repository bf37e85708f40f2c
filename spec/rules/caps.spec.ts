/**
 * The connection caps (Subscriptions.acquire / admission in lib/subscriptions.ts, counted by
 * lib/limits/connection-caps.ts) as one rule for every long-lived transport: with the slots of a
 * subject, an address or the process held by one WebSocket, one SSE stream and one parked poll, a
 * fourth connection is refused the same way on each of the three (a 429 or 503 with Retry-After,
 * the same code and message). spec/security/connections.spec.ts already covers WebSocket and SSE
 * refusals per IP and subject, and a WebSocket's per process; what is new here is the parked poll
 * refused for slots other transports hold, and SSE and polls at the process cap.
 */
import { randomBytes } from 'node:crypto';
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { expect } from 'chai';
import { WsClient } from '../support/clients.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { rawPoll } from '../support/raw-http.js';
import { waitFor } from '../support/wait.js';
import { Closers, type Seen } from './transports.js';

const CAP = 3;
const RETRY_AFTER = 4;

/** GET `path` from a source address; resolves at the status line, the answer left open. */
function getFrom(url: string, path: string, localAddress: string, headers: Record<string, string> = {}): Promise<{ req: ClientRequest; res: IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { localAddress, agent: false, headers });
    req.once('upgrade', (res, socket) => {
      socket.destroy();
      reject(new Error(`${path} was upgraded (${res.statusCode})`));
    });
    req.once('response', (res) => resolve({ req, res }));
    req.once('error', reject);
    req.end();
  });
}

/** The refusal in an answer: status, Retry-After and the JSON error. */
async function refusal({ res }: { res: IncomingMessage }): Promise<Seen> {
  let body = '';
  for await (const chunk of res) body += chunk;
  const { error } = JSON.parse(body);
  return { status: res.statusCode!, code: error.code, message: error.message, retryAfter: Number(res.headers['retry-after']) };
}

const UPGRADE = { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13' };

interface Cap {
  name: string;
  limits: Record<string, number>;
  /** Who holds the three slots (from three transports), and who is refused after. */
  holders: { address: (i: number) => string; credential: (gw: TestGateway) => Promise<string> };
  refused: { address: string; credential: (gw: TestGateway) => Promise<string> };
  expected: Omit<Seen, 'message'> & { message: RegExp };
}

const subjectToken = (gw: TestGateway) => gw.token({ sub: 'capped', streams: ['room:*'] });

const CAPS: Cap[] = [
  {
    name: 'one subject\'s cap (limits.parkedPerSubject), from other addresses',
    limits: { parkedPerSubject: CAP },
    holders: { address: (i) => `127.0.1.${i + 1}`, credential: subjectToken },
    refused: { address: '127.0.1.9', credential: subjectToken },
    expected: { status: 429, code: 'rate_limited', retryAfter: RETRY_AFTER, message: /for this subject/ },
  },
  {
    name: 'one address\'s cap (limits.parkedPerIp), whoever asks',
    limits: { parkedPerIp: CAP },
    holders: { address: () => '127.0.2.1', credential: async (gw) => gw.apiKey },
    refused: { address: '127.0.2.1', credential: (gw) => gw.token({ sub: `other-${randomBytes(3).toString('hex')}`, streams: ['room:*'] }) },
    expected: { status: 429, code: 'rate_limited', retryAfter: RETRY_AFTER, message: /from this address/ },
  },
  {
    name: 'the process cap (limits.parkedPerProcess)',
    limits: { parkedPerProcess: CAP },
    holders: { address: (i) => `127.0.3.${i + 1}`, credential: async (gw) => gw.apiKey },
    refused: { address: '127.0.3.9', credential: async (gw) => gw.apiKey },
    expected: { status: 503, code: 'overloaded', retryAfter: RETRY_AFTER, message: /holds too many connections/ },
  },
];

describe('the connection caps on every long-lived transport (rules: lib/subscriptions.ts acquire, admission)', function () {
  const closers = new Closers();
  afterEach(() => closers.closeAll());

  for (const cap of CAPS) {
    it(`refuses a WebSocket upgrade, an SSE stream and a parked poll alike once one of each holds ${cap.name}`, async function () {
      const gw = closers.add(
        await startGateway({ limits: { parkedPerSubject: 100, parkedPerIp: 100, parkedPerProcess: 100, capRetryAfterSeconds: RETRY_AFTER, ...cap.limits }, rateLimits: { pollsPerIpPerSecond: 0 } }),
        (g) => g.shutdown(),
      );
      const held = await cap.holders.credential(gw);
      closers.add(await WsClient.open(gw.url, { token: held, localAddress: cap.holders.address(0) }), (c) => c.close());
      const stream = closers.add(await getFrom(gw.url, `/sse?streams=room:1&token=${held}`, cap.holders.address(1)), (s) => s.req.destroy());
      expect(stream.res.statusCode).to.equal(200);
      closers.add(rawPoll(gw.url, held, { streams: 'room:1', timeout: 30 }, cap.holders.address(2)), (p) => p.abort());
      await waitFor(() => gw.caps.size === CAP, `${CAP} slots taken`);

      const credential = await cap.refused.credential(gw);
      const from = cap.refused.address;
      const seen: Record<string, Seen> = {
        'WebSocket upgrade': await refusal(await getFrom(gw.url, `/ws?token=${credential}`, from, { ...UPGRADE, 'Sec-WebSocket-Key': randomBytes(16).toString('base64') })),
        'SSE stream': await refusal(await getFrom(gw.url, `/sse?streams=room:1&token=${credential}`, from)),
        'parked poll': await (async () => {
          const r = await rawPoll(gw.url, credential, { streams: 'room:1', timeout: 30 }, from).response;
          const { error } = JSON.parse(r.body);
          return { status: r.status, code: error.code, message: error.message, retryAfter: Number(r.headers['retry-after']) };
        })(),
      };
      const { message, ...rest } = cap.expected;
      for (const [name, s] of Object.entries(seen)) {
        expect(s, name).to.include(rest);
        expect(s.message, name).to.match(message).and.equal(seen['WebSocket upgrade']!.message);
      }
      expect(gw.caps.size, 'the refusals took no slot').to.equal(CAP);
    });
  }
});
