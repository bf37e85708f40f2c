/**
 * Who is calling: server API keys (any stream) and client tokens (JWT HS256 with `sub`, `streams`
 * and `pub` patterns). Verified tokens are cached until they expire, so a client polling every few
 * seconds does not re-run HMAC and JSON parsing each time; matched API keys are cached too.
 */
import * as crypto from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { UnauthorizedError } from './errors.js';
import { compilePatterns } from './streams.js';
import { RecentMap } from './recent-map.js';

export interface Principal {
  kind: 'server' | 'client';
  /** Stable identity: the token's `sub`, or `apikey:<n>` for the n-th API key. */
  subject: string;
  /** When the credential stops being accepted (ms since the epoch, clock tolerance included); Infinity for API keys. */
  readonly expiresAtMs: number;
  /** The token's `iat` (seconds), when it has one; undefined for API keys. */
  readonly issuedAt?: number;
  canRead(stream: string): boolean;
  canWrite(stream: string): boolean;
}

export interface AuthOptions {
  secret: string;
  apiKeys: readonly string[];
  clockToleranceSeconds: number;
  audience?: string;
  issuer?: string;
}

const TOKEN_CACHE_MAX = 10_000;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

// crypto.hash (Node >= 20.12) hashes in one call, without a Hash object per credential.
const oneShot = (crypto as { hash?: (alg: string, data: string, enc: 'buffer') => Buffer }).hash;

function digest(value: string): Buffer {
  return oneShot ? oneShot('sha256', value, 'buffer') : crypto.createHash('sha256').update(value).digest();
}

function stringList(value: unknown, claim: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > 1000 || !value.every((v) => typeof v === 'string' && v.length <= 201)) {
    throw new UnauthorizedError(`token claim "${claim}" must be an array of stream patterns`);
  }
  return value as string[];
}

class ServerPrincipal implements Principal {
  readonly kind = 'server' as const;
  readonly expiresAtMs = Infinity;
  constructor(readonly subject: string) {}
  canRead(): boolean {
    return true;
  }
  canWrite(): boolean {
    return true;
  }
}

class ClientPrincipal implements Principal {
  readonly kind = 'client' as const;
  readonly canRead: (stream: string) => boolean;
  readonly canWrite: (stream: string) => boolean;
  constructor(readonly subject: string, read: string[], pub: string[], readonly expiresAtMs: number, readonly issuedAt?: number) {
    this.canRead = compilePatterns(read);
    this.canWrite = compilePatterns(pub);
  }
}

export class Auth {
  private readonly key: Uint8Array;
  private readonly apiKeyDigests: Buffer[];
  private readonly serverPrincipals: ServerPrincipal[];
  private readonly cache = new RecentMap<string, { principal: Principal; expiresAtMs: number }>(TOKEN_CACHE_MAX);

  /** Whether any API key has the shape of a token; if none has, a token needs no API-key check. */
  private readonly tokenShapedKeys: boolean;

  /** Revoked tokens (POST /disconnect with revoke, lib/disconnect.ts): (subject, iat) -> refused. */
  revoked?: (subject: string, issuedAt: number | undefined) => boolean;

  constructor(private readonly options: AuthOptions) {
    this.key = new TextEncoder().encode(options.secret);
    this.apiKeyDigests = options.apiKeys.map(digest);
    this.serverPrincipals = options.apiKeys.map((_, i) => new ServerPrincipal(`apikey:${i}`));
    this.tokenShapedKeys = options.apiKeys.some((k) => JWT_SHAPE.test(k));
  }

  /**
   * The principal behind a credential (an API key or a client token).
   * Throws, or rejects with, UnauthorizedError when it is missing, unknown, malformed, expired
   * or revoked; the message never repeats the credential. A credential seen before is answered at once, not
   * through a promise: a returning poller's token costs no async step (see `firstTime`).
   */
  authenticate(credential: string | undefined): Principal | Promise<Principal> {
    // When no API key looks like a token, a cached token cannot be mistaken for a key: a polling
    // client's token (or a backend's key) is found without the shape check (a regular expression
    // over the whole token) or the API-key digest. Otherwise the keys come first.
    const known = credential && !this.tokenShapedKeys ? this.cachedPrincipal(credential) : undefined;
    return known ?? this.firstTime(credential);
  }

  /** authenticate() for a credential not in the cache (or when API keys look like tokens). */
  private async firstTime(credential: string | undefined): Promise<Principal> {
    if (!credential) throw new UnauthorizedError('credentials required: Authorization: Bearer <token or API key>, or a token parameter');
    // Only verified tokens and matched API keys are cached.
    const tokenShaped = credential.length <= 8192 && JWT_SHAPE.test(credential);
    // Skipping the comparison for a token-shaped credential reveals only its shape, which the caller knows.
    if (!tokenShaped || this.tokenShapedKeys) {
      const keyIndex = this.apiKeyIndex(credential);
      if (keyIndex >= 0) {
        const principal = this.serverPrincipals[keyIndex]!;
        // Remembered like a verified token (a backend sends with one key all day): the next send
        // with it skips the digest. Only when no key looks like a token, because only then is
        // the cache consulted before the keys.
        if (!this.tokenShapedKeys) this.cache.set(credential, { principal, expiresAtMs: Infinity });
        return principal;
      }
    }
    if (!tokenShaped) throw new UnauthorizedError('credentials are not a valid API key or token');

    // Looked up above already when no API key has a token's shape.
    const cached = this.tokenShapedKeys ? this.cachedPrincipal(credential) : undefined;
    if (cached) return cached;
    const { principal, expiresAtMs } = await this.verify(credential);
    this.cache.set(credential, { principal, expiresAtMs });
    return this.unrevoked(principal);
  }

  /** The principal of a token verified earlier and not yet expired; an expired one is forgotten. */
  private cachedPrincipal(token: string): Principal | undefined {
    const cached = this.cache.get(token);
    if (!cached) return undefined;
    if (Date.now() < cached.expiresAtMs) return this.unrevoked(cached.principal);
    this.cache.delete(token);
    return undefined;
  }

  /** Throws UnauthorizedError for a client token revoked by POST /disconnect. */
  private unrevoked(principal: Principal): Principal {
    if (principal.kind === 'client' && this.revoked?.(principal.subject, principal.issuedAt)) throw new UnauthorizedError('token revoked');
    return principal;
  }

  /** Signs a client token (for /demo/token and tests). `ttlSeconds` from now. */
  async mintToken(claims: { sub: string; streams: string[]; pub?: string[]; ttlSeconds: number }): Promise<string> {
    let jwt = new SignJWT({ streams: claims.streams, pub: claims.pub ?? [] })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(claims.sub)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + claims.ttlSeconds);
    if (this.options.audience) jwt = jwt.setAudience(this.options.audience);
    if (this.options.issuer) jwt = jwt.setIssuer(this.options.issuer);
    return jwt.sign(this.key);
  }

  /** Compares against every key in constant time per key, so timing does not reveal which matched. */
  private apiKeyIndex(candidate: string): number {
    const d = digest(candidate);
    let found = -1;
    this.apiKeyDigests.forEach((k, i) => {
      if (crypto.timingSafeEqual(k, d) && found < 0) found = i;
    });
    return found;
  }

  private async verify(token: string): Promise<{ principal: Principal; expiresAtMs: number }> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.key, {
        algorithms: ['HS256'],
        clockTolerance: this.options.clockToleranceSeconds,
        requiredClaims: ['exp', 'sub'],
        audience: this.options.audience,
        issuer: this.options.issuer,
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new UnauthorizedError('token expired');
      throw new UnauthorizedError('token is invalid');
    }
    if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 200) {
      throw new UnauthorizedError('token subject is invalid');
    }
    const expiresAtMs = (payload.exp! + this.options.clockToleranceSeconds) * 1000;
    const iat = typeof payload.iat === 'number' ? payload.iat : undefined;
    return { principal: new ClientPrincipal(payload.sub, stringList(payload.streams, 'streams'), stringList(payload.pub, 'pub'), expiresAtMs, iat), expiresAtMs };
  }
}
