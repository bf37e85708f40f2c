/**
 * The pino root logger and the one rule for keeping secrets out of logs: request URLs pass
 * through redactUrl(), configured URLs (Redis, the HTTP hook) through configuredUrlForLogs(), and
 * authorization headers are never logged.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: { paths: ['req.headers.authorization', 'headers.authorization', 'token', 'apiKey'], censor: '[REDACTED]' },
    },
    destination,
  );
}

const SECRET_PARAMS = new Set(['token', 'access_token', 'api_key', 'key']);

/**
 * The URL with the values of token-bearing query parameters replaced. Names are decoded the way
 * Koa's query parser decodes them, or `?%74oken=...` would be read as a token and logged whole.
 */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const parts = url.slice(q + 1).split('&');
  let redacted = false;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const raw = part.slice(0, eq);
    // A name without '%', '+' or a leading '?' (which URLSearchParams drops) reads as written:
    // no URLSearchParams for it (this runs for every request at info).
    const plain = raw.indexOf('%') < 0 && raw.indexOf('+') < 0 && raw[0] !== '?';
    const name = plain ? raw : (new URLSearchParams(part).keys().next().value ?? '');
    if (SECRET_PARAMS.has(name.toLowerCase())) {
      parts[i] = `${raw}=[REDACTED]`;
      redacted = true;
    }
  }
  return redacted ? `${url.slice(0, q + 1)}${parts.join('&')}` : url;
}

/**
 * A configured URL (the Redis server, the HTTP hook) as logs show it: scheme, host and path. Its
 * user-info and query are left out (replaced by a marker), since either may carry credentials.
 */
export function configuredUrlForLogs(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '[unparsable URL]';
  }
  const userInfo = parsed.username || parsed.password ? '[REDACTED]@' : '';
  return `${parsed.protocol}//${userInfo}${parsed.host}${parsed.pathname}${parsed.search ? '?[REDACTED]' : ''}`;
}
