/**
 * The one configuration schema. Sources, later wins: built-in defaults (the schema),
 * config/default.json, config/<NODE_ENV>.json, environment variables, then overrides passed by code
 * (createGateway's options are such overrides, without files or environment). loadConfig() throws
 * ConfigError naming every bad or unknown key; the result is deeply frozen.
 */
import { readFileSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { DEFAULT_ANSWER_BYTES } from './answer-budget.js';
import { MAX_CURSOR_STREAMS } from './cursor.js';
import { withRedisScheme } from './store/redis-target.js';

const seconds = (def: number, max = 10 * 365 * 86400) => z.number().int().min(1).max(max).default(def);

const retentionRule = z.strictObject({
  /** Messages kept per stream, newest first (default 1000). */
  maxLength: z.number().int().min(1).max(1_000_000).default(1000),
  /** Messages expire this long after the stream's last append (default 24 h). */
  ttlSeconds: seconds(86_400),
  /** Epoch and last seq outlive the messages so quiet streams report a gap, not a reset (default 30 days). */
  metaTtlSeconds: seconds(30 * 86_400),
});

const retentionOverride = z.strictObject({
  /** Applies to streams whose name starts with this prefix; the longest matching prefix wins. */
  prefix: z.string().min(1).max(200),
  maxLength: z.number().int().min(1).max(1_000_000).optional(),
  ttlSeconds: z.number().int().min(1).optional(),
  metaTtlSeconds: z.number().int().min(1).optional(),
});

const schema = z.strictObject({
  /** development | production | test; production forbids dev conveniences. */
  env: z.enum(['development', 'production', 'test']).default('development'),
  /** TCP port (default 8080; 0 picks a free one). */
  port: z.number().int().min(0).max(65535).default(8080),
  /** Listen address (default all interfaces). */
  host: z.string().default('0.0.0.0'),
  /** Path prefix of every endpoint: "/" (default) or e.g. "/rt" for /rt/poll, /rt/send, /rt/ws, /rt/pollgate.js. */
  mount: z.string().regex(/^\/$|^(\/[A-Za-z0-9._~-]+)+$/, 'must be "/" or a path such as "/rt" (no trailing slash)').default('/'),
  redis: z.strictObject({
    /** Empty (default) means the in-memory store: single process, not durable (unless sentinels are set). */
    url: z.string().superRefine(refuseBadRedisUrl).default(''),
    /**
     * Sentinels ("host:port") that know where the primary of `name` is (default none). With them the
     * gateway asks Sentinel for the primary and follows a failover; url may still give credentials.
     */
    sentinels: z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'must be "host:port"')).default([]),
    /** The Sentinel master group name (Sentinel's "sentinel monitor <name> ..."; required with sentinels). */
    name: z.string().default(''),
    /** Prefix of every key and channel, so several deployments can share one Redis (default "pg:"). */
    keyPrefix: z.string().max(64).regex(/^[A-Za-z0-9_:.-]*$/).default('pg:'),
    /** A command that gets no answer in this time fails the request with 503 (default 2000 ms). */
    commandTimeoutMs: z.number().int().min(50).max(60_000).default(2000),
    /** Use Redis Cluster; url is one seed node (default false). */
    cluster: z.boolean().default(false),
    /** On a cluster, wake streams by sharded pub/sub, SPUBLISH/SSUBSCRIBE, Redis >= 7.0 (default true); false: classic PUBLISH, carried by every node. */
    shardedPubSub: z.boolean().default(true),
    /**
     * What a 200 from /send waits for after the append (default none): the primary's memory (none),
     * ackReplicas replicas (replicas: WAIT), or the primary's AOF fsync (aof: WAITAOF, Redis >= 7.2).
     * When the confirmation falls short the send answers 503 and its outcome is indeterminate.
     */
    ackDurability: z.enum(['none', 'replicas', 'aof']).default('none'),
    /** Replicas that must confirm an append when ackDurability is replicas (default 1). */
    ackReplicas: z.number().int().min(1).max(100).default(1),
    /** Longest wait for that confirmation; must be below commandTimeoutMs (default 500 ms). */
    ackTimeoutMs: z.number().int().min(1).max(60_000).default(500),
    /** Lingering subscriptions and the per-stream tail cache (docs/PERFORMANCE.md, docs/GUARANTEES.md). */
    tailCache: z.strictObject({
      /** Answer reads at a subscribed stream's head from memory (default true; on a cluster only with shardedPubSub). */
      enabled: z.boolean().default(true),
      /** A stream stays subscribed this long after its last waiter leaves (default 60 s; 0: unsubscribe at once). */
      lingerSeconds: z.number().int().min(0).max(3600).default(60),
      /** Streams kept subscribed without waiters at most; the oldest lingering goes first (default 10,000). */
      maxStreams: z.number().int().min(0).max(1_000_000).default(10_000),
      /** Newest messages kept per stream (default 64). */
      maxMessages: z.number().int().min(0).max(10_000).default(64),
      /** Characters of messages kept per stream at most (default 64 KiB). */
      maxBytes: z.number().int().min(0).max(64 * 1024 * 1024).default(64 * 1024),
      /** Characters kept over all streams; beyond it streams keep only their head (default 64 MiB). */
      totalBytes: z.number().int().min(0).max(16 * 1024 * 1024 * 1024).default(64 * 1024 * 1024),
    }).prefault({}),
  }).prefault({}),
  auth: z.strictObject({
    /** HS256 secret for client tokens and cursor tags; >= 32 chars. Generated at start in development. */
    secret: z.string().min(32, 'must be at least 32 characters').optional(),
    /** Server API keys (Authorization: Bearer <key>); each >= 16 chars. One is generated in development. */
    apiKeys: z.array(z.string().min(16, 'each API key must be at least 16 characters')).default([]),
    /**
     * Serve GET /demo/token, which mints a token for any subject to anyone who asks. Default: on
     * only while both auth.secret and auth.apiKeys are generated for this process (`npm start`
     * with nothing set), never for createGateway(); true turns it on (refused in production).
     */
    demoToken: z.boolean().optional(),
    /**
     * The version of the cursors this node issues (default 2, SipHash-tagged). Every version is
     * taken back. Set 1 on every node while a rolling upgrade from a release that reads only
     * version 1 is under way (or before rolling back to one), then remove it (docs/SCALING.md).
     */
    cursorVersion: z.union([z.literal(1), z.literal(2)]).default(2),
    /** Lifetime of demo tokens (default 1 h). */
    demoTokenTtlSeconds: seconds(3600, 86_400),
    /** Accepted clock skew when checking exp/nbf (default 30 s). */
    clockToleranceSeconds: z.number().int().min(0).max(600).default(30),
    /** When set, tokens must carry this aud / iss. */
    audience: z.string().optional(),
    issuer: z.string().optional(),
  }).prefault({}),
  poll: z.strictObject({
    /** Hold of a parked poll when the client names none (default 25 s: below common 30-60 s proxy idle cuts). */
    defaultTimeoutSeconds: z.number().min(0).max(300).default(25),
    /** Largest hold a client may ask for (default 55 s). */
    maxTimeoutSeconds: z.number().min(0).max(300).default(55),
    /** Messages per response when the client names no limit (default 100). */
    defaultLimit: z.number().int().min(1).max(10_000).default(100),
    /** Largest limit a client may ask for (default 1000). */
    maxLimit: z.number().int().min(1).max(10_000).default(1000),
    /** Streams one poll may name (default 50; at most what a cursor holds). */
    maxStreams: z.number().int().min(1).max(MAX_CURSOR_STREAMS).default(50),
  }).prefault({}),
  retention: z.strictObject({
    default: retentionRule.prefault({}),
    overrides: z.array(retentionOverride).default([]),
  }).prefault({}),
  limits: z.strictObject({
    /** Request body cap, enforced while reading (default 1 MiB). */
    bodyBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
    /** Serialized `data` of one message (default 64 KiB). */
    dataBytes: z.number().int().min(16).max(16 * 1024 * 1024).default(64 * 1024),
    /**
     * Bytes of messages one poll answer, WebSocket messages frame or SSE batch carries at most,
     * shared by its streams; a single larger message goes alone (default 1 MiB).
     */
    answerBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(DEFAULT_ANSWER_BYTES),
    /** Messages in one /send batch (default 100). */
    batchSize: z.number().int().min(1).max(10_000).default(100),
    /** Streams one /send message may fan out to (default 100). */
    streamsPerSend: z.number().int().min(1).max(10_000).default(100),
    /** A request body not fully received this long after the handler starts reading is cut with 408 (default 10 s). */
    bodyTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
    /** Parked polls, SSE streams and WebSockets one client-token subject may hold at once; API keys are exempt (default 20). */
    parkedPerSubject: z.number().int().min(1).max(1_000_000).default(20),
    /** Parked polls, SSE streams and WebSockets one client IP may hold at once (default 1000: NATs and proxies share addresses). */
    parkedPerIp: z.number().int().min(1).max(1_000_000).default(1000),
    /** Parked polls, SSE streams and WebSockets this process holds at most; beyond it new ones get 503 (default 20,000). */
    parkedPerProcess: z.number().int().min(1).max(10_000_000).default(20_000),
    /** Retry-After (s) sent when a connection cap refuses (default 2). */
    capRetryAfterSeconds: z.number().int().min(1).max(3600).default(2),
  }).prefault({}),
  rateLimits: z.strictObject({
    /** Messages appended per second per client-token subject (a fan-out to n streams counts n), shared across nodes on Redis; 0 disables (default 20). */
    sendPerSecond: z.number().int().min(0).max(1_000_000).default(20),
    /** The same per API key; 0 disables (default 10,000: a full batch x fan-out fits in one second). */
    apiKeySendPerSecond: z.number().int().min(0).max(10_000_000).default(10_000),
    /** New polls, SSE streams and WebSocket upgrades per second per client IP; 0 disables (default 100). */
    pollsPerIpPerSecond: z.number().int().min(0).max(1_000_000).default(100),
  }).prefault({}),
  cors: z.strictObject({
    /** Exact origins allowed to call cross-origin, e.g. "https://app.example.com" (default none). */
    origins: z.array(z.string().regex(/^https?:\/\/[^/\s]+$/, 'must be scheme://host[:port] with no path')).default([]),
    /** Access-Control-Max-Age of preflight answers (default 86400 s). */
    maxAgeSeconds: z.number().int().min(0).max(86_400).default(86_400),
  }).prefault({}),
  jsonp: z.strictObject({
    /** Answer GET /poll?callback=... as JSONP (default false). */
    enabled: z.boolean().default(false),
  }).prefault({}),
  ws: z.strictObject({
    /** Server ping every this long (default 25 s: under the 30-60 s idle cut of common proxies and load balancers). */
    pingIntervalMs: z.number().int().min(10).max(600_000).default(25_000),
    /** A ping counts as missed when no pong came back within this; at most pingIntervalMs (default 10 s: mobile radios wake slowly). */
    pongTimeoutMs: z.number().int().min(10).max(600_000).default(10_000),
    /** Consecutive missed pongs before the socket is dropped (default 2: one lost pong is not a dead peer). */
    maxMissedPongs: z.number().int().min(1).max(100).default(2),
    /** A socket opened without credentials must send its auth frame within this, else close 4401 (default 5 s). */
    authTimeoutMs: z.number().int().min(10).max(120_000).default(5000),
    /** Largest client frame; a bigger one closes the socket with 1009 (default 256 KiB). */
    maxPayloadBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(256 * 1024),
    /** Outgoing bytes buffered for a client that does not read; above this it is closed with 4008 (default 1 MiB). */
    maxBufferedBytes: z.number().int().min(1024).max(1024 * 1024 * 1024).default(1024 * 1024),
    /** Streams one connection may subscribe to (default 128). */
    maxSubscriptions: z.number().int().min(1).max(MAX_CURSOR_STREAMS).default(128),
    /** Messages per messages frame and per store read (default 100). */
    batchLimit: z.number().int().min(1).max(10_000).default(100),
    /** A closing handshake the client does not finish in this time ends with the socket destroyed (default 5 s). */
    closeTimeoutMs: z.number().int().min(10).max(60_000).default(5000),
  }).prefault({}),
  sse: z.strictObject({
    /** A `: keep-alive` comment is written this often (default 15 s: under common 30-60 s proxy idle cuts). */
    keepAliveMs: z.number().int().min(10).max(600_000).default(15_000),
    /** The `retry:` sent at the start: the browser's reconnect delay (default 2000 ms). */
    retryMs: z.number().int().min(0).max(600_000).default(2000),
    /** Streams are ended after this, so clients reconnect with Last-Event-ID: spreads load over rolling deploys and re-checks tokens (default 10 min). */
    maxLifetimeMs: z.number().int().min(10).max(86_400_000).default(600_000),
    /** Outgoing bytes buffered for a client that does not read; above this the stream is ended (default 1 MiB). */
    maxBufferedBytes: z.number().int().min(1024).max(1024 * 1024 * 1024).default(1024 * 1024),
    /** Messages per store read (default 100). */
    batchLimit: z.number().int().min(1).max(10_000).default(100),
  }).prefault({}),
  presence: z.strictObject({
    /** Stream patterns (exact names or `prefix*`) whose presence is tracked and answered by GET /presence (default none). */
    streams: z.array(z.string().min(1).max(201)).default([]),
    /** Stream patterns whose join and leave events are appended to `<stream>@presence` (default none); only tracked streams have any. */
    joinLeave: z.array(z.string().min(1).max(201)).default([]),
    /** A long-polling client stays present this long after its last poll was answered, waiting for the next (default 5 s). */
    pollGraceSeconds: z.number().min(0.01).max(300).default(5),
    /** Redis: each node writes its members again this often (default 5 s). */
    heartbeatSeconds: z.number().min(0.05).max(300).default(5),
    /** Redis: a node's members expire this long after its last heartbeat, e.g. after SIGKILL (default 15 s). */
    ttlSeconds: z.number().min(0.1).max(600).default(15),
  }).prefault({}),
  metrics: z.strictObject({
    /** Also serve GET /metrics without credentials on this port, for a scraper on a private network (default unset: off; 0 picks a free one; <mount>/metrics with an API key always works). */
    port: z.number().int().min(0).max(65535).optional(),
    /** Listen address of that port (default 127.0.0.1). */
    host: z.string().default('127.0.0.1'),
  }).prefault({}),
  hooks: z.strictObject({
    /** The standalone server's authorize hook: the gateway POSTs each read/write decision for client tokens here (default empty: none). */
    url: z.union([z.literal(''), z.url({ protocol: /^https?$/ })]).default(''),
    /** Signs every HTTP hook request (header x-pollgate-signature) so the application can check it came from the gateway (default empty: unsigned, with a warning at start; at least 16 characters). */
    secret: z.union([z.literal(''), z.string().min(16)]).default(''),
    /** A hook answer not received within this is no decision (default 1000 ms). */
    timeoutMs: z.number().int().min(10).max(60_000).default(1000),
    /** On a timeout or a failed hook: false (default) refuses with 503 hook_unavailable (fail closed); true allows, uncached. */
    failOpen: z.boolean().default(false),
    /** How long an allow (HTTP hook or createGateway's authorize) is remembered per subject, stream, action and transport; refusals never are (default 5 s; 0: ask every time). */
    allowCacheSeconds: z.number().min(0).max(3600).default(5),
  }).prefault({}),
  disconnect: z.strictObject({
    /** How long POST /disconnect's revoke refuses the subject's older tokens; set it to your longest token lifetime (default 24 h). */
    revokeSeconds: seconds(86_400, 30 * 86_400),
    /** Redis: every node re-reads recent disconnects this often, so one whose Pub/Sub message was lost still takes effect (default 2000 ms). */
    recheckMs: z.number().int().min(100).max(600_000).default(2000),
  }).prefault({}),
  server: z.strictObject({
    /** Idle keep-alive sockets are closed after this; keep above the load balancer's idle timeout (default 65 s). */
    keepAliveTimeoutMs: z.number().int().min(1000).default(65_000),
    /** Time allowed to receive request headers; must exceed keepAliveTimeoutMs (default 66 s). */
    headersTimeoutMs: z.number().int().min(1000).default(66_000),
    /** Time allowed to receive a whole request; must exceed the longest poll hold (default 120 s). */
    requestTimeoutMs: z.number().int().min(1000).default(120_000),
    /** How often Node checks headersTimeout and requestTimeout; a slow client is cut up to this late (default 1 s; Node's own is 30 s). */
    connectionsCheckingIntervalMs: z.number().int().min(100).max(60_000).default(1000),
    /** Proxy hops trusted in X-Forwarded-For for the client IP (per-IP caps and limits); 0 uses the socket address (default 0). */
    trustProxyHops: z.number().int().min(0).max(10).default(0),
    /** On SIGTERM, connections still open after this are cut (default 10 s). */
    shutdownGraceMs: z.number().int().min(100).default(10_000),
  }).prefault({}),
  log: z.strictObject({
    /** pino level (default info). */
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  }).prefault({}),
});

export type ConfigInput = z.input<typeof schema>;
type Parsed = z.output<typeof schema>;
export type RetentionRule = z.output<typeof retentionRule>;

/** Validated config plus what start-up derived (generated secrets are flagged so they can be announced). */
export type Config = Readonly<Parsed & {
  auth: Parsed['auth'] & { secret: string; demoToken: boolean };
  generated: { secret: boolean; apiKey?: string };
}>;

/**
 * redis.url: '' (the memory store), a redis:// or rediss:// URL, or what ioredis also takes
 * without a scheme (host, host:port, a socket path). A URL of another scheme reached ioredis as a
 * socket path, and a password with a broken percent-encoding (`%zz`) failed start with a bare "URI
 * malformed". The message never repeats the URL: it may hold a password.
 */
function refuseBadRedisUrl(url: string, ctx: z.RefinementCtx): void {
  if (url === '' || url.startsWith('/')) return;
  const refuse = (message: string) => ctx.addIssue({ code: 'custom', message });
  let parsed: URL | undefined;
  try {
    parsed = new URL(withRedisScheme(url));
  } catch {
    parsed = undefined;
  }
  if (!parsed?.hostname) return refuse('is not a valid URL: redis://[user:password@]host[:port][/db]');
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    return refuse('must be redis:// or rediss:// ([user:password@]host[:port][/db]), a bare host[:port], or a socket path');
  }
  try {
    decodeURIComponent(parsed.username);
    decodeURIComponent(parsed.password);
  } catch {
    refuse('its user name or password is not valid percent-encoding: write a "%" in them as %25');
  }
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const configDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'config');

type Json = { [k: string]: unknown };

function readJson(path: string): Json {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Json;
  } catch (err) {
    throw new ConfigError(`config: cannot read ${path}: ${(err as Error).message}`);
  }
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function merge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (k === '__proto__' || k === 'constructor' || v === undefined) continue;
    out[k] = isObject(v) && isObject(out[k]) ? merge(out[k] as Json, v) : v;
  }
  return out;
}

function list(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

function fromEnv(env: NodeJS.ProcessEnv): Json {
  const num = (name: string) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    // Plain decimals only: Number() would read ' ' as 0 (a random port), '0x1f90' and '1e3' too.
    if (!/^\s*-?\d+(\.\d+)?\s*$/.test(raw)) throw new ConfigError(`config: ${name}="${raw}" is not a number`);
    return Number(raw);
  };
  const bool = (name: string) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    if (raw === 'true' || raw === '1') return true;
    if (raw === 'false' || raw === '0') return false;
    throw new ConfigError(`config: ${name}="${raw}" must be true or false`);
  };
  return {
    port: num('PORT'),
    host: env.HOST || undefined,
    mount: env.POLLGATE_MOUNT || undefined,
    redis: {
      url: env.REDIS_URL,
      keyPrefix: env.POLLGATE_REDIS_PREFIX,
      cluster: bool('POLLGATE_REDIS_CLUSTER'),
      shardedPubSub: bool('POLLGATE_REDIS_SHARDED_PUBSUB'),
      sentinels: env.POLLGATE_REDIS_SENTINELS ? list(env.POLLGATE_REDIS_SENTINELS) : undefined,
      name: env.POLLGATE_REDIS_NAME || undefined,
      ackDurability: env.POLLGATE_REDIS_ACK_DURABILITY || undefined,
    },
    auth: {
      secret: env.POLLGATE_SECRET || undefined,
      apiKeys: env.POLLGATE_API_KEYS ? list(env.POLLGATE_API_KEYS) : undefined,
      demoToken: bool('POLLGATE_DEMO_TOKEN'),
      cursorVersion: num('POLLGATE_CURSOR_VERSION'),
    },
    cors: { origins: env.POLLGATE_CORS_ORIGINS ? list(env.POLLGATE_CORS_ORIGINS) : undefined },
    jsonp: { enabled: bool('POLLGATE_JSONP') },
    poll: { defaultTimeoutSeconds: num('POLLGATE_POLL_TIMEOUT') },
    log: { level: env.LOG_LEVEL || undefined },
    presence: { streams: env.POLLGATE_PRESENCE_STREAMS ? list(env.POLLGATE_PRESENCE_STREAMS) : undefined },
    metrics: { port: num('POLLGATE_METRICS_PORT') },
    hooks: { url: env.POLLGATE_HOOKS_URL || undefined, secret: env.POLLGATE_HOOKS_SECRET || undefined },
  };
}

function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n');
}

/** Cross-field rules a schema cannot express; each names the keys involved. */
function checkCombinations(c: Parsed): string[] {
  const problems: string[] = [];
  if (c.poll.defaultTimeoutSeconds > c.poll.maxTimeoutSeconds) {
    problems.push('poll.defaultTimeoutSeconds must not exceed poll.maxTimeoutSeconds');
  }
  if (c.poll.defaultLimit > c.poll.maxLimit) problems.push('poll.defaultLimit must not exceed poll.maxLimit');
  if (c.server.headersTimeoutMs <= c.server.keepAliveTimeoutMs) {
    problems.push('server.headersTimeoutMs must be greater than server.keepAliveTimeoutMs (Node closes sockets otherwise)');
  }
  // The server must never cut its own parked polls.
  if (c.poll.maxTimeoutSeconds * 1000 + 5000 > c.server.requestTimeoutMs) {
    problems.push('server.requestTimeoutMs must exceed poll.maxTimeoutSeconds by at least 5 s');
  }
  if (c.redis.sentinels.length) {
    if (!c.redis.name) problems.push('redis.name must name the Sentinel master group when redis.sentinels are set');
    if (c.redis.cluster) problems.push('redis.sentinels and redis.cluster cannot be combined (a cluster fails over by itself)');
  } else if (c.redis.name) {
    problems.push('redis.name is the Sentinel master group: it needs redis.sentinels');
  }
  if (c.redis.ackDurability !== 'none') {
    if (c.redis.ackTimeoutMs >= c.redis.commandTimeoutMs) {
      problems.push('redis.ackTimeoutMs must be below redis.commandTimeoutMs (the confirmation runs inside the command deadline)');
    }
  }
  if (c.limits.dataBytes > c.limits.bodyBytes) problems.push('limits.dataBytes must not exceed limits.bodyBytes');
  for (const [i, r] of [c.retention.default, ...c.retention.overrides].entries()) {
    const where = i === 0 ? 'retention.default' : `retention.overrides[${i - 1}]`;
    const ttl = r.ttlSeconds ?? c.retention.default.ttlSeconds;
    const metaTtl = r.metaTtlSeconds ?? c.retention.default.metaTtlSeconds;
    // Metadata must outlive the messages, or a quiet stream's clients see a reset instead of a gap.
    if (metaTtl < ttl) problems.push(`${where}.metaTtlSeconds must not be less than its ttlSeconds`);
  }
  for (const origin of c.cors.origins) {
    // Browsers send the scheme and host in lower case: a mixed-case entry could never match.
    if (origin !== origin.toLowerCase()) problems.push(`cors.origins: "${origin}" must be lower case`);
  }
  if (c.ws.pongTimeoutMs > c.ws.pingIntervalMs) problems.push('ws.pongTimeoutMs must not exceed ws.pingIntervalMs (a pong is awaited before the next ping)');
  // A send frame carries the data plus its envelope; it must fit in one frame.
  // Two heartbeats may be late before a live node's members expire.
  if (c.presence.ttlSeconds < 2 * c.presence.heartbeatSeconds) problems.push('presence.ttlSeconds must be at least twice presence.heartbeatSeconds');
  if (c.limits.dataBytes + 1024 > c.ws.maxPayloadBytes) problems.push('ws.maxPayloadBytes must exceed limits.dataBytes by at least 1024 bytes');
  return problems;
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Applied last; used by tests and embedders. */
  overrides?: ConfigInput;
  /** Read config/*.json (default true). */
  files?: boolean;
  /**
   * Whether /demo/token may default to on with generated credentials (default true: `npm start`).
   * createGateway() passes false: an embedder gets it only by setting auth.demoToken.
   */
  demoTokenByDefault?: boolean;
}

export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const mode = env.NODE_ENV === 'production' || env.NODE_ENV === 'test' ? env.NODE_ENV : 'development';
  let raw: Json = { env: mode };
  if (options.files !== false) {
    for (const name of ['default.json', `${mode}.json`]) {
      const path = join(configDir, name);
      if (existsSync(path)) raw = merge(raw, readJson(path));
    }
    if (env.POLLGATE_CONFIG) raw = merge(raw, readJson(env.POLLGATE_CONFIG));
  }
  raw = merge(raw, fromEnv(env));
  if (options.overrides) raw = merge(raw, options.overrides as Json);

  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(`config is invalid:\n${describeIssues(parsed.error)}`);
  const c = parsed.data;
  const problems = checkCombinations(c);
  if (c.env === 'production') {
    if (!c.auth.secret) problems.push('auth.secret is required in production (set POLLGATE_SECRET, >= 32 chars)');
    if (c.auth.apiKeys.length === 0) problems.push('auth.apiKeys needs at least one key in production (set POLLGATE_API_KEYS)');
    if (c.auth.demoToken) problems.push('auth.demoToken must be false in production');
  }
  if (problems.length) throw new ConfigError(`config is invalid:\n${problems.map((p) => `  ${p}`).join('\n')}`);

  const generated: Config['generated'] = { secret: !c.auth.secret };
  const apiKeys = [...c.auth.apiKeys];
  if (apiKeys.length === 0) {
    generated.apiKey = `dev_${randomBytes(18).toString('base64url')}`;
    apiKeys.push(generated.apiKey);
  }
  // Only a process with nothing to protect serves tokens to strangers by default: with a real
  // secret a demo token reads another node's streams, with a real API key a backend's (issue 23).
  const demoDefault = options.demoTokenByDefault !== false && generated.secret && generated.apiKey !== undefined;
  const config = {
    ...c,
    auth: {
      ...c.auth,
      apiKeys,
      secret: c.auth.secret ?? randomBytes(32).toString('base64url'),
      demoToken: c.auth.demoToken ?? demoDefault,
    },
    generated,
  };
  return deepFreeze(config);
}

/** The retention rule for a stream: the longest matching prefix override over the default. */
export function retentionFor(config: Config, stream: string): RetentionRule {
  let best: z.output<typeof retentionOverride> | undefined;
  for (const o of config.retention.overrides) {
    if (stream.startsWith(o.prefix) && (!best || o.prefix.length > best.prefix.length)) best = o;
  }
  if (!best) return config.retention.default;
  return {
    maxLength: best.maxLength ?? config.retention.default.maxLength,
    ttlSeconds: best.ttlSeconds ?? config.retention.default.ttlSeconds,
    metaTtlSeconds: best.metaTtlSeconds ?? config.retention.default.metaTtlSeconds,
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
