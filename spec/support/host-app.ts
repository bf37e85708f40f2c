/**
 * A gateway mounted at the root of a host Koa app, in process, with a look at the Koa context of
 * the last /poll: what a parked poll holds can be checked from outside the pipeline.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa, { type Context, type Middleware } from 'koa';
import { createGateway, type GatewayOptions } from '../../lib/index.js';

export interface HostedGateway {
  url: string;
  /** The Koa context of the last request to /poll. */
  lastPoll(): Context | undefined;
  close(): Promise<void>;
}

/** `before`: a host middleware of the test's own, mounted in front of the gateway. */
export async function gatewayInHost(options: GatewayOptions, before?: Middleware): Promise<HostedGateway> {
  const gateway = await createGateway(options);
  let lastPoll: Context | undefined;
  const app = new Koa();
  app.use((ctx, next) => {
    // By req.url: Koa's ctx.path would parse the URL and keep it on the request (what a parked poll holds).
    const url = ctx.req.url ?? '';
    if (url === '/poll' || url.startsWith('/poll?')) lastPoll = ctx;
    return next();
  });
  if (before) app.use(before);
  app.use(gateway.middleware());
  const server = createServer(app.callback());
  gateway.attach(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    lastPoll: () => lastPoll,
    close: async () => {
      await gateway.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
