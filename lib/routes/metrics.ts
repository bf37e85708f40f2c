/**
 * GET /metrics: Prometheus text exposition of this process (lib/metrics.ts). API keys only, here;
 * `metrics.port` serves the same without credentials on a port of its own (lib/metrics-server.ts).
 */
import type { Context } from 'koa';
import type { Auth } from '../auth.js';
import { ForbiddenError } from '../errors.js';
import { credentialFrom } from '../http/credentials.js';
import { requestHeader, setHeader } from '../http/headers.js';
import { noStore } from '../http/request-log.js';
import type { Metrics } from '../metrics.js';

export function metricsRoute(deps: { auth: Auth; metrics: Metrics }) {
  return async function metrics(ctx: Context): Promise<void> {
    noStore(ctx);
    const principal = await deps.auth.authenticate(credentialFrom(requestHeader(ctx, 'authorization'), undefined));
    if (principal.kind !== 'server') throw new ForbiddenError('metrics need an API key');
    setHeader(ctx, 'content-type', deps.metrics.contentType);
    ctx.body = await deps.metrics.scrape();
  };
}
