/**
 * The peer driver: what the peer scenarios need from a target's wire protocol, written once per
 * protocol (pollgate long-poll, Engine.IO v4 polling with Socket.IO v5 packets, Bayeux
 * long-polling), all over undici from the client side.
 */
import { Client, type Dispatcher } from 'undici';
import { CONNECTION_OPTIONS } from '../client.js';

/** What every publish carries: `n` counts up from 0 per stream, `t` is performance.now() (ms) at publish. */
export interface Payload {
  n: number;
  t: number;
}

export interface SubscriberHandlers {
  /** The payloads one response carried, in order, and when it arrived (performance.now()). */
  onData(items: Payload[], now: number): void;
  /** Anything a healthy subscriber never sees (an error, a refused subscribe, a dropped session). */
  onProblem(what: string): void;
}

export interface Subscription {
  /** Settles once the server has the subscription (messages published after it reach this subscriber). */
  ready: Promise<void>;
  /** Settles when the polling loop ends (after `signal` aborts, or on a failure already reported). */
  done: Promise<void>;
}

export interface PeerDriver {
  /** Subscribes to `stream` over `conn` (one keep-alive connection) and polls until `signal` aborts. */
  subscribe(conn: Dispatcher, stream: string, h: SubscriberHandlers, signal: AbortSignal): Subscription;
  /** One publish the way a backend publishes to this target; resolves once accepted, throws otherwise. */
  publish(pub: Dispatcher, stream: string, data: Payload): Promise<void>;
}

/** One keep-alive connection to `url`, for one subscriber. */
export function connection(url: string): Client {
  return new Client(url, CONNECTION_OPTIONS);
}

/** One request whose body is read as text; throws unless the status is 200. */
export async function request(d: Dispatcher, what: string, o: Dispatcher.RequestOptions): Promise<string> {
  const r = await d.request(o);
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`${what} ${r.statusCode}: ${text.slice(0, 200)}`);
  return text;
}

/** A deferred promise that never rejects unhandled (its reason is reported elsewhere too). */
export function deferred(): { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}
