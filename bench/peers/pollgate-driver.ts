/**
 * pollgate's long-poll as a peer driver: GET /poll with the last cursor (from the oldest message
 * on the first poll), POST /send with the API key; the same calls as bench/client.ts.
 */
import type { Dispatcher, Pool } from 'undici';
import { poll, send } from '../client.js';
import type { PeerDriver, Payload } from './driver.js';

export function pollgateDriver(token: string): PeerDriver {
  return {
    subscribe(conn, stream, h, signal) {
      // since=earliest: a message published before the first poll parks is still delivered.
      const done = (async () => {
        let cursor: string | undefined;
        while (!signal.aborted) {
          let a;
          try {
            a = await poll(conn as Pool, token, { streams: stream, cursor, since: 'earliest', timeoutS: 25, signal });
          } catch (err) {
            if (!signal.aborted) h.onProblem(`${stream}: poll failed: ${(err as Error).message}`);
            return;
          }
          const now = performance.now();
          if (a.gaps || a.resets) h.onProblem(`${stream}: unexpected gap or reset ${JSON.stringify(a)}`);
          if (a.messages.length) h.onData(a.messages.map((m) => m.data as Payload), now);
          cursor = a.cursor;
        }
      })();
      return { ready: Promise.resolve(), done };
    },
    async publish(pub: Dispatcher, stream, data) {
      await send(pub as Pool, stream, data);
    },
  };
}
