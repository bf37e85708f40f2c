import { expect } from 'chai';
import fc from 'fast-check';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseQuery, RawExchange, sameName } from '../../lib/http/exchange.js';

/** The reference: URLSearchParams, a repeated name gives an array, every name an own property. */
function reference(search: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of new URLSearchParams(search)) {
    const prev = Object.prototype.hasOwnProperty.call(out, name) ? out[name] : undefined;
    const next = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
    Object.defineProperty(out, name, { value: next, writable: true, enumerable: true, configurable: true });
  }
  return out;
}

describe('parseQuery', () => {
  it('reads every query string as URLSearchParams does, with or without anything to decode', () => {
    const piece = fc.constantFrom('a', 'b', 'streams', 'cursor', '__proto__', 'constructor', '=', '&', '&&', '?', '%', '%41', '%zz', '%C3%A9', '%C3', '%ED%A0%80', '%2B', '%26', '%3D', '%3A', '+', 'é', '\uD800', '\uDC00', '😀', ',', '');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (parts) => {
        const search = parts.join('');
        expect(parseQuery(search)).to.deep.equal(reference(search));
      }),
      { numRuns: 3000 },
    );
  });

  it('keeps __proto__ an own, plain parameter and repeats as arrays', () => {
    const q = parseQuery('__proto__=x&a=1&a=2&a=3&b');
    expect(Object.getPrototypeOf(q)).to.equal(Object.prototype);
    expect(Object.keys(q)).to.deep.equal(['__proto__', 'a', 'b']);
    expect(q.__proto__).to.equal('x');
    expect(q.a).to.deep.equal(['1', '2', '3']);
    expect(q.b).to.equal('');
  });
});

describe('RawExchange.get', () => {
  const exchange = (headers: Record<string, string | string[]>) =>
    new RawExchange({ method: 'GET', url: '/poll', headers } as unknown as IncomingMessage, {} as ServerResponse, '', 0, { finish() {} });

  it('reads a request header whatever the case asked for, again and again', () => {
    const ex = exchange({ 'content-type': 'text/plain', 'x-forwarded-for': ['a', 'b'] });
    for (let i = 0; i < 3; i++) {
      expect(ex.get('Content-Type')).to.equal('text/plain');
      expect(ex.get('content-type')).to.equal('text/plain');
      expect(ex.get('CONTENT-TYPE')).to.equal('text/plain');
      expect(ex.get('X-Forwarded-For')).to.equal('a, b');
      expect(ex.get('Origin')).to.equal('');
    }
  });
});

describe('sameName', () => {
  it('matches header names as a case-insensitive ASCII comparison does, and nothing else', () => {
    // Letters and the characters next to them in ASCII ('@' and '`', '[' and '{'), which a
    // careless case fold would match.
    const char = fc.constantFrom('a', 'A', 'z', 'Z', '-', '@', '`', '[', '{', '^', '~', '0', '_', 'é', 'É');
    const name = fc.array(char, { maxLength: 6 }).map((c) => c.join(''));
    const fold = (s: string) => s.replace(/[A-Z]/g, (c) => c.toLowerCase());
    fc.assert(
      fc.property(name, name, fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }), (a, b, flips) => {
        expect(sameName(a, b)).to.equal(fold(a) === fold(b));
        // The same name with the case of some characters changed (é becomes É: not the same).
        const recased = [...a].map((c, i) => (flips[i] ? c.toUpperCase() : c.toLowerCase())).join('');
        expect(sameName(a, recased)).to.equal(fold(a) === fold(recased));
      }),
      { numRuns: 5000 },
    );
    expect(sameName('Content-Type', 'content-type')).to.equal(true);
    expect(sameName('X-Request-Id', 'Content-Type')).to.equal(false);
  });
});
