/**
 * The client address that per-IP caps and rate limits are keyed by, for requests Koa does not see
 * (WebSocket upgrades). Same rule as Koa's `ctx.ip` with `proxy` and `maxIpsCount`: X-Forwarded-For
 * counts only when `trustedHops` > 0, and then only its last `trustedHops` entries.
 */
import type { IncomingMessage } from 'node:http';

export function clientIp(req: IncomingMessage, trustedHops: number): string {
  const remote = req.socket.remoteAddress ?? '';
  if (trustedHops <= 0) return remote;
  const header = req.headers['x-forwarded-for'];
  const list = (Array.isArray(header) ? header.join(',') : header ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return list.slice(-trustedHops)[0] ?? remote;
}
