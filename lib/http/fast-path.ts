/**
 * The hot endpoints (GET|POST /poll, POST /send, GET /sse) served straight on node:http. Koa costs each
 * request a context, request and response object, koa-compose's promise chain and koa-router's
 * matching of every route: at the Node floor that was a quarter of a delivery's CPU and a few KB
 * of every parked poll (docs/PERFORMANCE.md). The same route functions and the same request
 * rules (beginRequest, corsRule, renderError) run here as in the Koa app, in the same order;
 * anything else, HEAD and OPTIONS on these paths included, goes to Koa, which serves these
 * routes too. `server.fastPath: false` sends everything to Koa.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import { corsRule, type CorsOptions } from './cors.js';
import { renderError } from './errors.js';
import { RawExchange, type ExchangeFinisher, type HttpExchange } from './exchange.js';
import { beginRequest } from './request-log.js';

export type Route = (ex: HttpExchange) => Promise<void>;

export interface FastPathDeps {
  log: Logger;
  cors: CorsOptions;
  trustProxyHops: number;
  isDraining: () => boolean;
  poll: Route;
  send: Route;
  /** GET /sse: an event stream holds what its request was given for its whole life (Koa's context included). */
  sse: Route;
  /** Counts the requests the fast path served (GET /stats shows it). */
  served: { count: number };
}

/** Returns a handler that serves a request and returns true, or returns false for Koa to serve it. */
export function fastPath(deps: FastPathDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  const allowCors = corsRule(deps.cors);

  // The Koa app's middleware order: request log, then errors, then CORS, then the route;
  // `Connection: close` while draining is decided last.
  const finisher: ExchangeFinisher = {
    finish(ex, ...failure) {
      try {
        if (failure.length > 0) renderError(ex, failure[0]);
        if (deps.isDraining()) ex.set('Connection', 'close');
        ex.respond();
      } catch (err) {
        // Only a bug gets here (an answer that cannot be written): never leave the client hanging.
        deps.log.error({ err }, 'fast path could not answer');
        ex.res.destroy();
      }
    },
  };

  async function serve(ex: RawExchange, route: Route): Promise<void> {
    try {
      beginRequest(ex, deps.log);
      if (allowCors(ex)) await route(ex);
    } catch (err) {
      return finisher.finish(ex, err);
    }
    // A route that answers later (a parked poll) finishes the exchange itself.
    if (!ex.answeringLater) finisher.finish(ex);
  }

  return (req, res) => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const method = req.method;
    let route: Route | undefined;
    if (path === '/poll') route = method === 'GET' || method === 'POST' ? deps.poll : undefined;
    else if (path === '/send') route = method === 'POST' ? deps.send : undefined;
    else if (path === '/sse') route = method === 'GET' ? deps.sse : undefined;
    if (!route) return false;
    deps.served.count++;
    void serve(new RawExchange(req, res, q < 0 ? '' : url.slice(q + 1), deps.trustProxyHops, finisher), route);
    return true;
  };
}
