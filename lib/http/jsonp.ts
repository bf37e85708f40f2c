/**
 * JSONP for browsers that can use neither CORS nor XDomainRequest. The callback name is checked
 * strictly (identifiers and dots only) and the body starts with a comment so that a response can
 * never begin with attacker-chosen bytes (Rosetta Flash).
 */
import { BadRequestError } from '../errors.js';

const CALLBACK = /^[A-Za-z_$][A-Za-z0-9_$]{0,63}(\.[A-Za-z_$][A-Za-z0-9_$]{0,63}){0,3}$/;

export function assertCallbackName(value: unknown): string {
  if (typeof value !== 'string' || !CALLBACK.test(value)) {
    throw new BadRequestError('callback must be a JavaScript identifier path (letters, digits, _, $ and dots, at most 64 characters a part)');
  }
  return value;
}

/** `/**\/cb(<json>);` with U+2028/U+2029 escaped: they are legal in JSON but end lines in old JavaScript. */
export function jsonpBody(callback: string, json: string): string {
  return `/**/${callback}(${json.replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029')});`;
}
