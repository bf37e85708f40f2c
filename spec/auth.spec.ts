import { expect } from 'chai';
import { SignJWT, UnsecuredJWT, generateKeyPair } from 'jose';
import { Auth, type AuthOptions } from '../lib/auth.js';
import { UnauthorizedError } from '../lib/errors.js';
import fc from 'fast-check';
import { compilePatterns, matchesAny, matchesPattern } from '../lib/streams.js';

const SECRET = 'auth-secret-0123456789abcdefghijklmnopq';
const KEYS = ['server-key-aaaaaaaaaaaa', 'server-key-bbbbbbbbbbbb'];
const key = new TextEncoder().encode(SECRET);
const now = () => Math.floor(Date.now() / 1000);

function auth(options: Partial<AuthOptions> = {}): Auth {
  return new Auth({ secret: SECRET, apiKeys: KEYS, clockToleranceSeconds: 30, ...options });
}

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** A token signed with the gateway's secret and whatever header and claims are given. */
async function signed(claims: Record<string, unknown>, alg = 'HS256', secret: Uint8Array = key): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).sign(secret);
}

const valid = () => ({ sub: 'alice', streams: ['room:*'], pub: ['room:1'], exp: now() + 60 });

/** Runs `fn` with both Date.now() and new Date() (which jose reads) at `ms`. */
async function atTime<T>(ms: number, fn: () => T | Promise<T>): Promise<T> {
  const RealDate = Date;
  class FixedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(ms);
      else super(...(args as [number]));
    }
    static override now(): number {
      return ms;
    }
  }
  globalThis.Date = FixedDate as DateConstructor;
  try {
    return await fn();
  } finally {
    globalThis.Date = RealDate;
  }
}

async function refused(a: Auth, credential: string | undefined, message?: RegExp): Promise<UnauthorizedError> {
  try {
    await a.authenticate(credential);
  } catch (err) {
    expect(err).to.be.instanceOf(UnauthorizedError);
    if (message) expect((err as Error).message).to.match(message);
    if (credential) expect((err as Error).message).not.to.include(credential);
    return err as UnauthorizedError;
  }
  throw new Error('credential was accepted');
}

describe('Auth', function () {
  describe('API keys', function () {
    it('accepts an API key that has the shape of a token (a.b.c), and still verifies real tokens', async function () {
      const dotted = 'abc.def.ghi_jkl-mno';
      const a = auth({ apiKeys: [...KEYS, dotted] });
      const principal = await a.authenticate(dotted);
      expect(principal.kind).to.equal('server');
      expect(principal.subject).to.equal('apikey:2');
      expect((await a.authenticate(await signed(valid()))).subject).to.equal('alice');
      await refused(a, 'abc.def.ghi_jkl-mnX');
    });

    it('keeps telling a token-shaped API key from a cached token, on every request', async function () {
      const dotted = 'abc.def.ghi_jkl-mno';
      const token = await signed(valid());
      // With and without a token-shaped key: the later rounds find the token in the cache.
      for (const a of [auth({ apiKeys: [...KEYS, dotted] }), auth()]) {
        for (let round = 0; round < 3; round++) {
          expect((await a.authenticate(token)).kind).to.equal('client');
          expect((await a.authenticate(KEYS[0])).subject).to.equal('apikey:0');
          await refused(a, `${token}x`);
        }
      }
      const withKey = auth({ apiKeys: [...KEYS, dotted] });
      await withKey.authenticate(token);
      expect((await withKey.authenticate(dotted)).subject).to.equal('apikey:2');
      expect((await withKey.authenticate(token)).subject).to.equal('alice');
    });

    it('accepts each configured key as a server principal that may read and write anything', async function () {
      const a = auth();
      const p0 = await a.authenticate(KEYS[0]);
      const p1 = await a.authenticate(KEYS[1]);
      expect([p0.kind, p0.subject, p1.subject]).to.deep.equal(['server', 'apikey:0', 'apikey:1']);
      expect(p0.canRead('anything')).to.equal(true);
      expect(p0.canWrite('user:x')).to.equal(true);
    });

    it('still refuses near misses of a key, and tokens, once that key has been accepted (and cached)', async function () {
      const a = auth();
      for (let round = 0; round < 3; round++) {
        expect((await a.authenticate(KEYS[0])).subject).to.equal('apikey:0');
        await refused(a, KEYS[0]!.slice(0, -1));
        await refused(a, `${KEYS[0]}a`);
        await refused(a, KEYS[0]!.toUpperCase());
        expect((await a.authenticate(KEYS[1])).subject).to.equal('apikey:1');
      }
      const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(valid())}.${'A'.repeat(43)}`;
      await refused(a, unsigned);
      expect((await a.authenticate(KEYS[0])).kind).to.equal('server');
    });

    it('refuses a missing credential, a wrong key, a prefix and an extension of a key', async function () {
      const a = auth();
      await refused(a, undefined, /credentials required/);
      await refused(a, '');
      await refused(a, 'server-key-aaaaaaaaaaab');
      await refused(a, KEYS[0]!.slice(0, -1));
      await refused(a, `${KEYS[0]}a`);
    });
  });

  describe('client tokens', function () {
    it('accepts an HS256 token and exposes its sub and patterns', async function () {
      const p = await auth().authenticate(await signed(valid()));
      expect(p.kind).to.equal('client');
      expect(p.subject).to.equal('alice');
      expect(p.canRead('room:42')).to.equal(true);
      expect(p.canRead('user:bob')).to.equal(false);
      expect(p.canWrite('room:1')).to.equal(true);
      expect(p.canWrite('room:2')).to.equal(false);
    });

    it('accepts tokens minted by mintToken', async function () {
      const a = auth({ audience: 'pg', issuer: 'me' });
      const p = await a.authenticate(await a.mintToken({ sub: 'bob', streams: ['user:bob'], ttlSeconds: 60 }));
      expect(p.subject).to.equal('bob');
      expect(p.canWrite('user:bob')).to.equal(false);
    });

    it('refuses alg none', async function () {
      const unsecured = new UnsecuredJWT({ streams: ['*'], pub: ['*'] }).setSubject('eve').setExpirationTime('1h').encode();
      await refused(auth(), unsecured);
      // Also with a signature part left in place.
      await refused(auth(), `${b64({ alg: 'none', typ: 'JWT' })}.${b64(valid())}.${'A'.repeat(43)}`);
    });

    it('refuses HS384, HS512 and RS256 tokens', async function () {
      await refused(auth(), await signed(valid(), 'HS384'));
      await refused(auth(), await signed(valid(), 'HS512'));
      const { privateKey } = await generateKeyPair('RS256');
      await refused(auth(), await new SignJWT(valid()).setProtectedHeader({ alg: 'RS256' }).sign(privateKey));
    });

    it('refuses a wrong signature and a signature swapped from another token', async function () {
      await refused(auth(), await signed(valid(), 'HS256', new TextEncoder().encode('not-the-secret-0123456789abcdefghijk')));
      const good = await signed(valid());
      const other = await signed({ ...valid(), sub: 'mallory', pub: ['*'] });
      const [h, , s] = good.split('.');
      await refused(auth(), `${h}.${other.split('.')[1]}.${s}`);
    });

    it('refuses a token expired beyond the clock tolerance, and accepts one inside it', async function () {
      await refused(auth({ clockToleranceSeconds: 30 }), await signed({ ...valid(), exp: now() - 31 }), /expired/);
      const p = await auth({ clockToleranceSeconds: 30 }).authenticate(await signed({ ...valid(), exp: now() - 20 }));
      expect(p.subject).to.equal('alice');
      await refused(auth({ clockToleranceSeconds: 0 }), await signed({ ...valid(), exp: now() - 1 }), /expired/);
    });

    it('refuses a token without exp or without sub, or with a sub that is not a non-empty string', async function () {
      const { exp: _e, ...noExp } = valid();
      const { sub: _s, ...noSub } = valid();
      await refused(auth(), await signed(noExp));
      await refused(auth(), await signed(noSub));
      await refused(auth(), await signed({ ...valid(), sub: '' }));
      await refused(auth(), await signed({ ...valid(), sub: 42 }));
      await refused(auth(), await signed({ ...valid(), sub: 'x'.repeat(201) }));
    });

    it('refuses a token whose nbf is in the future', async function () {
      await refused(auth(), await signed({ ...valid(), nbf: now() + 3600 }));
    });

    it('checks aud and iss when configured', async function () {
      const a = auth({ audience: 'pollgate', issuer: 'https://issuer.example' });
      await refused(a, await signed(valid()));
      await refused(a, await signed({ ...valid(), aud: 'other', iss: 'https://issuer.example' }));
      await refused(a, await signed({ ...valid(), aud: 'pollgate', iss: 'https://evil.example' }));
      const p = await a.authenticate(await signed({ ...valid(), aud: 'pollgate', iss: 'https://issuer.example' }));
      expect(p.subject).to.equal('alice');
    });

    it('refuses malformed tokens', async function () {
      const a = auth();
      const good = await signed(valid());
      for (const bad of ['abc', 'a.b', 'a.b.c', '..', `${good}.x`, `${good} `, good.replace('.', '..'), `${b64('x')}.${b64(valid())}.sig`, `e30.${b64(valid())}.`, `${good.split('.')[0]}.not*base64.${good.split('.')[2]}`, `${good}${'A'.repeat(8200)}`]) {
        await refused(a, bad);
      }
    });

    it('refuses streams and pub claims that are not arrays of strings', async function () {
      for (const claims of [{ streams: 'room:*' }, { pub: 'room:*' }, { streams: { 0: 'room:*' } }, { streams: [1] }, { pub: [null] }, { streams: ['x'.repeat(300)] }]) {
        await refused(auth(), await signed({ ...valid(), ...claims }), /claim/);
      }
    });

    it('treats missing streams and pub claims as empty', async function () {
      const p = await auth().authenticate(await signed({ sub: 'x', exp: now() + 60 }));
      expect(p.canRead('room:1')).to.equal(false);
      expect(p.canWrite('room:1')).to.equal(false);
    });

    it('does not serve a cached token past its exp (plus the tolerance)', async function () {
      const a = auth({ clockToleranceSeconds: 0 });
      const exp = now() + 60;
      const token = await signed({ ...valid(), exp });
      await a.authenticate(token);
      expect((await atTime(exp * 1000 - 1, () => a.authenticate(token))).subject).to.equal('alice');
      await atTime(exp * 1000, () => refused(a, token, /expired/));
    });

    it('answers a token (or key) seen before at once, not through a promise, and still refuses it once revoked', async function () {
      const a = auth();
      const token = await signed(valid());
      expect(a.authenticate(token)).to.be.instanceOf(Promise);
      await a.authenticate(token);
      const again = a.authenticate(token);
      expect(again).not.to.be.instanceOf(Promise);
      expect((again as Awaited<typeof again>).subject).to.equal('alice');
      await a.authenticate(KEYS[0]);
      expect((a.authenticate(KEYS[0]) as Awaited<ReturnType<Auth['authenticate']>>).subject).to.equal('apikey:0');
      a.revoked = (subject) => subject === 'alice';
      await refused(a, token, /revoked/);
    });

    it('does not cache a refusal', async function () {
      const a = auth({ audience: 'pg', clockToleranceSeconds: 0 });
      const token = await signed({ ...valid(), aud: 'pg', nbf: now() + 10 });
      await refused(a, token);
      const later = await atTime((now() + 11) * 1000, () => a.authenticate(token));
      expect(later.subject).to.equal('alice');
    });
  });
});

describe('matchesPattern', function () {
  it('matches an exact name only exactly', function () {
    expect(matchesPattern('room:1', 'room:1')).to.equal(true);
    expect(matchesPattern('room:1', 'room:10')).to.equal(false);
    expect(matchesPattern('room:1', 'room:')).to.equal(false);
  });

  it('treats a trailing * as a prefix wildcard', function () {
    expect(matchesPattern('room:*', 'room:1')).to.equal(true);
    expect(matchesPattern('room:*', 'room:')).to.equal(true);
    expect(matchesPattern('room:*', 'roomx')).to.equal(false);
    expect(matchesPattern('room:*', 'xroom:1')).to.equal(false);
  });

  it('lets * alone match every stream', function () {
    expect(matchesPattern('*', 'anything:at.all')).to.equal(true);
  });

  it('matches nothing with a * anywhere but the end, or characters outside the grammar', function () {
    for (const [pattern, stream] of [['room*:1', 'room*:1'], ['room*:1', 'roomx:1'], ['*:1', 'room:1'], ['room:**', 'room:*x'], ['room:**', 'room:1'], ['ro om*', 'ro om1'], ['room/*', 'room/1'], ['', '']]) {
      expect(matchesPattern(pattern!, stream!), `${pattern} vs ${stream}`).to.equal(false);
    }
  });

  it('matchesAny is true when one pattern matches', function () {
    expect(matchesAny(['user:bob', 'room:*'], 'room:9')).to.equal(true);
    expect(matchesAny([], 'room:9')).to.equal(false);
  });

  it('compilePatterns answers as matchesAny does for any patterns and stream', function () {
    const piece = fc.constantFrom('room', ':', '1', '*', '**', 'a', ' ', '/', '.', '@', '-', '');
    const text = fc.array(piece, { maxLength: 5 }).map((parts) => parts.join(''));
    fc.assert(
      fc.property(fc.array(text, { maxLength: 4 }), text, (patterns, stream) => {
        expect(compilePatterns(patterns)(stream)).to.equal(matchesAny(patterns, stream));
      }),
      { numRuns: 5000 },
    );
  });
});
