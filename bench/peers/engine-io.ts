/**
 * Socket.IO over Engine.IO v4 long-polling, spoken from the client side:
 *   GET  /socket.io/?EIO=4&transport=polling          -> `0{"sid",...,"pingInterval"}` (open)
 *   POST ...&sid=S  `40{"streams":[...]}`             -> `ok` (CONNECT to namespace "/", auth = the rooms)
 *   GET  ...&sid=S                                     -> packets joined by \x1e: `40{...}` the CONNECT
 *        ack, `42["message",{stream,data}]` events, `2` pings (answered by POST `3`, or the server
 *        closes the session after pingTimeout), `6` noop, `1` close.
 * Publishing is the bench server's POST /send (bench/peers/socketio-server.ts).
 */
import type { Dispatcher } from 'undici';
import { BENCH_API_KEY } from '../gateway.js';
import { deferred, request, type PeerDriver, type Payload } from './driver.js';

/** Engine.IO v4 payload separator (record separator). */
const SEPARATOR = '\x1e';

export interface EnginePacket {
  /** Engine.IO type: 0 open, 1 close, 2 ping, 3 pong, 4 message, 6 noop. */
  type: number;
  data: string;
}

/** Splits a polling response body into Engine.IO packets (text only; the bench sends no binary). */
export function parseEnginePayload(body: string): EnginePacket[] {
  if (body === '') return [];
  return body.split(SEPARATOR).map((p) => ({ type: Number(p[0]), data: p.slice(1) }));
}

export interface SocketEvent {
  name: string;
  args: unknown[];
}

/** Socket.IO v5 packet inside an Engine.IO message: `2[...]` is an event on namespace "/"; else undefined. */
export function parseSocketEvent(data: string): SocketEvent | undefined {
  if (data[0] !== '2') return undefined;
  const [name, ...args] = JSON.parse(data.slice(1)) as [string, ...unknown[]];
  return { name, args };
}

const PATH = '/socket.io/?EIO=4&transport=polling';
const TEXT = { 'content-type': 'text/plain;charset=UTF-8' };

export const socketIoDriver: PeerDriver = {
  subscribe(conn, stream, h, signal) {
    const ready = deferred();
    const done = (async () => {
      let sid = '';
      try {
        const open = parseEnginePayload(await request(conn, 'engine.io open', { method: 'GET', path: PATH, signal }))[0];
        if (open?.type !== 0) throw new Error(`expected an open packet, got ${JSON.stringify(open)}`);
        sid = (JSON.parse(open.data) as { sid: string }).sid;
        const path = `${PATH}&sid=${encodeURIComponent(sid)}`;
        const post = (body: string) => request(conn, 'engine.io post', { method: 'POST', path, headers: TEXT, body, signal });
        await post(`40${JSON.stringify({ streams: [stream] })}`);
        while (!signal.aborted) {
          const body = await request(conn, 'engine.io poll', { method: 'GET', path, signal });
          const now = performance.now();
          const items: Payload[] = [];
          let pinged = false;
          for (const p of parseEnginePayload(body)) {
            if (p.type === 2) pinged = true;
            else if (p.type === 1) throw new Error('the server closed the session');
            else if (p.type === 4 && p.data[0] === '0') ready.resolve();
            else if (p.type === 4 && p.data[0] === '4') throw new Error(`connect_error ${p.data}`);
            else if (p.type === 4) {
              const e = parseSocketEvent(p.data);
              if (e?.name === 'message') items.push((e.args[0] as { data: Payload }).data);
            }
          }
          if (items.length) h.onData(items, now);
          if (pinged) await post('3');
        }
      } catch (err) {
        ready.reject(err as Error);
        if (!signal.aborted) h.onProblem(`${stream} (sid ${sid}): ${(err as Error).message}`);
      }
    })();
    return { ready: ready.promise, done };
  },
  async publish(pub: Dispatcher, stream, data) {
    await request(pub, 'socket.io /send', {
      method: 'POST',
      path: '/send',
      headers: { authorization: `Bearer ${BENCH_API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ stream, data }),
    });
  },
};
