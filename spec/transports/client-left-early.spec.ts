/**
 * A client that goes away while its request is still being checked (its first store read is
 * slow) has closed the response before a parked poll or an SSE stream would listen for that:
 * neither may then be kept for its timeout or lifetime, holding a connection slot, and an SSE
 * stream must not keep shutdown waiting for a 'close' that already happened.
 */
import { request } from 'node:http';
import { expect } from 'chai';
import { MemoryStore } from '../../lib/store/memory-store.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { HookedStore } from '../support/hooked-store.js';
import { waitFor } from '../support/wait.js';

const RETENTION = { maxLength: 100, ttlSeconds: 3600, metaTtlSeconds: 86400 };

describe('a client that left before its request was handed over', function () {
  let gw: TestGateway;
  let hooked: HookedStore;
  let release: () => void;

  beforeEach(async function () {
    hooked = new HookedStore(new MemoryStore(() => RETENTION));
    const held = new Promise<void>((r) => (release = r));
    // The first read (the start position of a stream the request has no cursor for) waits.
    hooked.beforeRead = () => (hooked.reads === 1 ? held : undefined);
    gw = await startGateway({ poll: { defaultTimeoutSeconds: 25 } }, { store: hooked });
  });
  afterEach(async function () {
    release();
    await gw.shutdown();
  });

  /** Sends the request, waits until its first read is held, then drops the connection and waits until the server saw it go. */
  async function leaveDuringFirstRead(path: string): Promise<void> {
    const req = request(`${gw.url}${path}`, { headers: { authorization: `Bearer ${gw.apiKey}` }, agent: false });
    req.on('error', () => undefined);
    req.end();
    await waitFor(() => hooked.reads === 1, 'the first read to be held');
    req.destroy();
    await waitFor(() => new Promise<boolean>((r) => gw.server.getConnections((_, n) => r(n === 0))), 'the server to see the client go');
  }

  it('does not park the poll', async function () {
    await leaveDuringFirstRead('/poll?streams=left:1&since=earliest');
    release();
    // Its stream is empty, a head the store knows: it tries to park with no second read.
    await waitFor(() => hooked.reads >= 2 || hooked.headChecks >= 1, 'the poll to check the head and try to park');
    await new Promise((r) => setImmediate(r));
    expect(gw.longPolls.size).to.equal(0);
    expect(gw.caps.size).to.equal(0);
    expect(gw.registry.size).to.equal(0);
  });

  it('does not keep the SSE stream, and shutdown does not wait for it', async function () {
    let opened = 0;
    const open = gw.sse.open.bind(gw.sse);
    gw.sse.open = (...args: Parameters<typeof open>) => {
      opened++;
      open(...args);
    };
    await leaveDuringFirstRead('/sse?streams=left:2&since=earliest');
    release();
    await waitFor(() => opened === 1, 'the route to hand the stream over');
    expect(gw.sse.size).to.equal(0);
    expect(gw.caps.size).to.equal(0);
    expect(gw.registry.size).to.equal(0);
    await gw.shutdown();
  });
});
