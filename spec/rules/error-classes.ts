/**
 * Every error class lib/errors.ts exports, found by looking (not listed by hand), so a class added
 * there is picked up by the specs that check each class is rendered, and known to the browser client.
 */
import * as errors from '../../lib/errors.js';
import { GatewayError, toWire } from '../../lib/errors.js';

type ErrorClass = new (...args: any[]) => GatewayError;

/** [export name, class] of each exported subclass of GatewayError. */
export function errorClasses(): [string, ErrorClass][] {
  const exported: [string, unknown][] = Object.entries(errors);
  return exported.filter((e): e is [string, ErrorClass] => typeof e[1] === 'function' && e[1].prototype instanceof GatewayError);
}

/** An instance of each exported subclass (constructor arguments: a message, then 1 for retryAfter or allow). */
export function everyGatewayError(): [string, GatewayError][] {
  return errorClasses().map(([name, Cls]) => [name, new Cls(`a ${name}`, 1)]);
}

/** code -> HTTP status of every code the gateway can send, `internal` (anything unexpected) included. */
export function serverStatuses(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const wire of [...everyGatewayError().map(([, err]) => toWire(err)), toWire(new Error('unexpected'))]) {
    if (out[wire.code] !== undefined && out[wire.code] !== wire.status) throw new Error(`code ${wire.code} is sent with ${out[wire.code]} and ${wire.status}`);
    out[wire.code] = wire.status;
  }
  return out;
}
