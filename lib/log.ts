/**
 * The pino root logger and the one rule for keeping secrets out of logs: URLs pass through
 * redactUrl() and authorization headers are never logged.
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

const SECRET_PARAMS = /([?&](?:token|access_token|api_key|key)=)[^&#]*/gi;

/** The URL with the values of token-bearing query parameters replaced. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_PARAMS, '$1[REDACTED]');
}
