/**
 * Faye over Bayeux 1.0 long-polling, spoken from the client side (every message a JSON array
 * POSTed to /bayeux): /meta/handshake -> clientId; /meta/subscribe to `/s/<stream>`; then
 * /meta/connect in a loop, each held until messages arrive or the server's timeout, answered
 * with the connect reply and the data messages `{channel, data, id}`. Publishing is a Bayeux
 * publish without a clientId, authorised by `ext.key` (bench/peers/faye-server.ts).
 */
import type { Dispatcher } from 'undici';
import { BENCH_API_KEY } from '../gateway.js';
import { deferred, request, type PeerDriver, type Payload } from './driver.js';

interface BayeuxReply {
  channel: string;
  successful?: boolean;
  clientId?: string;
  error?: string;
  data?: unknown;
}

const JSON_BODY = { 'content-type': 'application/json' };

/** The Bayeux channel of a stream (stream names in the peer bench are [A-Za-z0-9-], valid segments). */
export const channelOf = (stream: string) => `/s/${stream}`;

async function exchange(conn: Dispatcher, message: object, signal?: AbortSignal): Promise<BayeuxReply[]> {
  const text = await request(conn, 'bayeux', { method: 'POST', path: '/bayeux', headers: JSON_BODY, body: JSON.stringify([message]), signal });
  return JSON.parse(text) as BayeuxReply[];
}

/** The reply on `channel`; throws unless it is there and successful. */
function successful(replies: BayeuxReply[], channel: string): BayeuxReply {
  const r = replies.find((m) => m.channel === channel);
  if (!r?.successful) throw new Error(`${channel} failed: ${JSON.stringify(r ?? replies)}`);
  return r;
}

export const bayeuxDriver: PeerDriver = {
  subscribe(conn, stream, h, signal) {
    const ready = deferred();
    const done = (async () => {
      let clientId = '';
      try {
        const hello = { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] };
        clientId = successful(await exchange(conn, hello, signal), '/meta/handshake').clientId!;
        successful(await exchange(conn, { channel: '/meta/subscribe', clientId, subscription: channelOf(stream) }, signal), '/meta/subscribe');
        ready.resolve();
        const connect = { channel: '/meta/connect', clientId, connectionType: 'long-polling' };
        while (!signal.aborted) {
          const replies = await exchange(conn, connect, signal);
          const now = performance.now();
          successful(replies, '/meta/connect');
          const items = replies.filter((m) => !m.channel.startsWith('/meta/')).map((m) => m.data as Payload);
          if (items.length) h.onData(items, now);
        }
      } catch (err) {
        ready.reject(err as Error);
        if (!signal.aborted) h.onProblem(`${stream}: ${(err as Error).message}`);
      }
      // Faye keeps a client whose held connect was dropped until its engine times it out:
      // say goodbye, so its sessions do not pile up over the runs (Engine.IO and pollgate end
      // a session whose poll connection closes).
      if (clientId) await exchange(conn, { channel: '/meta/disconnect', clientId }).catch(() => undefined);
    })();
    return { ready: ready.promise, done };
  },
  async publish(pub: Dispatcher, stream, data) {
    const replies = await exchange(pub, { channel: channelOf(stream), data, ext: { key: BENCH_API_KEY } });
    successful(replies, channelOf(stream));
  },
};
