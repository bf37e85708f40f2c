/**
 * GET /healthz: the process answers. GET /readyz: the store answers and the process is not
 * draining, else 503 (load balancers stop routing here).
 */
import type { Context } from 'koa';
import { ShuttingDownError } from '../errors.js';
import { noStore } from '../http/request-log.js';
import type { Store } from '../store/store.js';

export function healthRoute() {
  return function healthz(ctx: Context): void {
    noStore(ctx);
    ctx.body = { status: 'ok' };
  };
}

export function readyRoute(deps: { store: Store; isDraining: () => boolean }) {
  return async function readyz(ctx: Context): Promise<void> {
    noStore(ctx);
    if (deps.isDraining()) throw new ShuttingDownError();
    await deps.store.ping();
    ctx.body = { status: 'ready', store: deps.store.kind };
  };
}
