import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { ConfigError, loadConfig, retentionFor, type ConfigInput } from '../lib/config.js';
import { MAX_CURSOR_STREAMS } from '../lib/cursor.js';

const SECRET = 'config-secret-0123456789abcdefghijklmn';
const KEY = 'config-api-key-0123456789';

function load(env: NodeJS.ProcessEnv = {}, overrides?: ConfigInput, files = false) {
  return loadConfig({ env, overrides, files });
}

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('config was accepted');
}

describe('loadConfig', function () {
  describe('defaults', function () {
    it('gives the documented defaults in development', function () {
      const c = load();
      expect(c.env).to.equal('development');
      expect(c.port).to.equal(8080);
      expect(c.redis.url).to.equal('');
      expect(c.redis.keyPrefix).to.equal('pg:');
      expect(c.poll).to.deep.equal({ defaultTimeoutSeconds: 25, maxTimeoutSeconds: 55, defaultLimit: 100, maxLimit: 1000, maxStreams: 50 });
      expect(c.retention.default).to.deep.equal({ maxLength: 1000, ttlSeconds: 86_400, metaTtlSeconds: 30 * 86_400 });
      expect(c.limits).to.deep.equal({
        bodyBytes: 1024 * 1024, dataBytes: 64 * 1024, answerBytes: 1024 * 1024, batchSize: 100, streamsPerSend: 100, bodyTimeoutMs: 10_000,
        parkedPerSubject: 20, parkedPerIp: 1000, parkedPerProcess: 20_000, capRetryAfterSeconds: 2,
      });
      expect(c.rateLimits).to.deep.equal({ sendPerSecond: 20, apiKeySendPerSecond: 10_000, pollsPerIpPerSecond: 100 });
      expect(c.server.connectionsCheckingIntervalMs).to.equal(1000);
      expect(c.server.trustProxyHops).to.equal(0);
      expect(c.cors.origins).to.deep.equal([]);
      expect(c.auth.clockToleranceSeconds).to.equal(30);
      expect(c.server.requestTimeoutMs).to.be.above(c.poll.maxTimeoutSeconds * 1000);
      expect(c.server.headersTimeoutMs).to.be.above(c.server.keepAliveTimeoutMs);
    });

    it('generates a secret and an API key in development and enables the demo token', function () {
      const c = load();
      expect(c.auth.secret.length).to.be.at.least(32);
      expect(c.generated.secret).to.equal(true);
      expect(c.generated.apiKey).to.be.a('string');
      expect(c.auth.apiKeys).to.deep.equal([c.generated.apiKey]);
      expect(c.auth.demoToken).to.equal(true);
      expect(load().auth.secret).not.to.equal(c.auth.secret);
    });

    it('serves the demo token by default only with self-generated credentials, never because NODE_ENV is unset (issue 23)', function () {
      expect(load({ POLLGATE_SECRET: SECRET, POLLGATE_API_KEYS: KEY }).auth.demoToken).to.equal(false);
      expect(load({ POLLGATE_SECRET: SECRET }).auth.demoToken).to.equal(false);
      expect(load({ POLLGATE_API_KEYS: KEY }).auth.demoToken).to.equal(false);
      expect(load({ NODE_ENV: 'test', POLLGATE_SECRET: SECRET, POLLGATE_API_KEYS: KEY }).auth.demoToken).to.equal(false);
      expect(load({ POLLGATE_SECRET: SECRET, POLLGATE_API_KEYS: KEY, POLLGATE_DEMO_TOKEN: 'true' }).auth.demoToken).to.equal(true);
      expect(load({}, { auth: { demoToken: true, secret: SECRET, apiKeys: [KEY] } }).auth.demoToken).to.equal(true);
      // createGateway()'s rule: off unless asked for, even with generated credentials.
      expect(loadConfig({ env: {}, files: false, demoTokenByDefault: false }).auth.demoToken).to.equal(false);
      expect(loadConfig({ env: {}, files: false, demoTokenByDefault: false, overrides: { auth: { demoToken: true } } }).auth.demoToken).to.equal(true);
    });

    it('reads config/production.json in production: no demo token, no JSONP', function () {
      const c = load({ NODE_ENV: 'production', POLLGATE_SECRET: SECRET, POLLGATE_API_KEYS: KEY }, undefined, true);
      expect(c.env).to.equal('production');
      expect(c.auth.demoToken).to.equal(false);
      expect(c.jsonp.enabled).to.equal(false);
      expect(c.generated).to.deep.equal({ secret: false });
    });

    it('is deeply frozen', function () {
      const c = load();
      expect(Object.isFrozen(c.poll)).to.equal(true);
      expect(Object.isFrozen(c.auth.apiKeys)).to.equal(true);
      expect(() => ((c as any).poll.maxStreams = 1)).to.throw(TypeError);
    });
  });

  describe('environment', function () {
    it('applies PORT, HOST, REDIS_URL, POLLGATE_SECRET, POLLGATE_API_KEYS, POLLGATE_CORS_ORIGINS and friends', function () {
      const c = load({
        PORT: '9090',
        HOST: '127.0.0.1',
        REDIS_URL: 'redis://127.0.0.1:6390',
        POLLGATE_REDIS_PREFIX: 'pgx:',
        POLLGATE_REDIS_CLUSTER: 'true',
        POLLGATE_REDIS_SHARDED_PUBSUB: 'false',
        POLLGATE_SECRET: SECRET,
        POLLGATE_API_KEYS: ` ${KEY}, other-api-key-0123456789 ,`,
        POLLGATE_CORS_ORIGINS: 'https://a.example.com,http://localhost:3000',
        POLLGATE_JSONP: 'true',
        POLLGATE_DEMO_TOKEN: '0',
        POLLGATE_POLL_TIMEOUT: '10',
        LOG_LEVEL: 'warn',
      });
      expect(c.port).to.equal(9090);
      expect(c.host).to.equal('127.0.0.1');
      expect(c.redis.url).to.equal('redis://127.0.0.1:6390');
      expect(c.redis.keyPrefix).to.equal('pgx:');
      expect(c.redis).to.include({ cluster: true, shardedPubSub: false });
      expect(c.auth.secret).to.equal(SECRET);
      expect(c.generated.secret).to.equal(false);
      expect(c.auth.apiKeys).to.deep.equal([KEY, 'other-api-key-0123456789']);
      expect(c.generated.apiKey).to.equal(undefined);
      expect(c.cors.origins).to.deep.equal(['https://a.example.com', 'http://localhost:3000']);
      expect(c.jsonp.enabled).to.equal(true);
      expect(c.auth.demoToken).to.equal(false);
      expect(c.poll.defaultTimeoutSeconds).to.equal(10);
      expect(c.log.level).to.equal('warn');
    });

    it('lets code overrides win over the environment', function () {
      expect(load({ PORT: '9090' }, { port: 0 }).port).to.equal(0);
    });

    it('ignores empty variables', function () {
      const c = load({ PORT: '', POLLGATE_SECRET: '', POLLGATE_API_KEYS: '', POLLGATE_JSONP: '' });
      expect(c.port).to.equal(8080);
      expect(c.generated.secret).to.equal(true);
    });

    it('names the variable when a number or boolean is not one', function () {
      expect(refusal(() => load({ PORT: 'eighty' }))).to.include('PORT');
      expect(refusal(() => load({ POLLGATE_JSONP: 'yes' }))).to.include('POLLGATE_JSONP');
      expect(refusal(() => load({ PORT: '70000' }))).to.include('port');
    });

    it('refuses numbers that are not plain decimals instead of reading them as something else', function () {
      // Number() reads ' ' as 0 (a random port), '0x1f90' as 8080 and '1e3' as 1000.
      for (const raw of [' ', '0x1f90', '1e3', '80abc', 'Infinity']) {
        expect(refusal(() => load({ PORT: raw })), JSON.stringify(raw)).to.include('PORT');
      }
      expect(load({ PORT: ' 9090 ' }).port).to.equal(9090);
      expect(load({ POLLGATE_POLL_TIMEOUT: '2.5' }).poll.defaultTimeoutSeconds).to.equal(2.5);
    });

    it('issues version 2 cursors unless POLLGATE_CURSOR_VERSION (auth.cursorVersion) says 1, and refuses any other', function () {
      expect(load().auth.cursorVersion).to.equal(2);
      expect(load({ POLLGATE_CURSOR_VERSION: '1' }).auth.cursorVersion).to.equal(1);
      expect(load({}, { auth: { cursorVersion: 1 } }).auth.cursorVersion).to.equal(1);
      expect(refusal(() => load({ POLLGATE_CURSOR_VERSION: '3' }))).to.include('auth.cursorVersion');
    });
  });

  describe('validation', function () {
    it('names the key of a bad value', function () {
      expect(refusal(() => load({}, { poll: { maxTimeoutSeconds: 301 } }))).to.include('poll.maxTimeoutSeconds');
      expect(refusal(() => load({}, { poll: { maxStreams: 0 } }))).to.include('poll.maxStreams');
      expect(refusal(() => load({}, { limits: { bodyBytes: 'big' as unknown as number } }))).to.include('limits.bodyBytes');
      expect(refusal(() => load({}, { cors: { origins: ['https://a.example.com/path'] } }))).to.include('cors.origins.0');
      expect(refusal(() => load({}, { log: { level: 'loud' as 'info' } }))).to.include('log.level');
      expect(refusal(() => load({}, { redis: { keyPrefix: 'a b' } }))).to.include('redis.keyPrefix');
    });

    it('takes Sentinel as sentinels and a name, and refuses them half given or with a cluster', function () {
      const c = load({ POLLGATE_REDIS_SENTINELS: '10.0.0.1:26379, 10.0.0.2:26379', POLLGATE_REDIS_NAME: 'mymaster' });
      expect(c.redis).to.deep.include({ sentinels: ['10.0.0.1:26379', '10.0.0.2:26379'], name: 'mymaster', url: '' });
      expect(refusal(() => load({}, { redis: { sentinels: ['10.0.0.1:26379'] } }))).to.include('redis.name must name the Sentinel master group');
      expect(refusal(() => load({}, { redis: { name: 'mymaster' } }))).to.include('redis.name is the Sentinel master group: it needs redis.sentinels');
      expect(refusal(() => load({}, { redis: { sentinels: ['10.0.0.1:26379'], name: 'm', cluster: true } }))).to.include('redis.sentinels and redis.cluster cannot be combined');
      expect(refusal(() => load({}, { redis: { sentinels: ['10.0.0.1'], name: 'm' } }))).to.include('redis.sentinels.0');
    });

    it('takes a redis:// or rediss:// URL or what ioredis takes without a scheme, and refuses the rest without repeating the URL', function () {
      for (const url of ['redis://:s%40cret@127.0.0.1:6379/2', 'rediss://user:pw@redis.internal:6380', 'redis-host', 'localhost:6379', 'redis:6379', '/tmp/redis.sock']) {
        expect(load({ REDIS_URL: url }).redis.url, url).to.equal(url);
      }
      for (const url of ['http://127.0.0.1:6379', 'ftp://redis.internal']) {
        expect(refusal(() => load({ REDIS_URL: url })), url).to.match(/redis\.url: must be redis:\/\/ or rediss:\/\//);
      }
      for (const url of ['redis://127.0.0.1:99999', 'redis://', 'a b:6379']) {
        expect(refusal(() => load({ REDIS_URL: url })), url).to.match(/redis\.url: is not a valid URL/);
      }
      for (const url of ['redis://user:pa%zzword@127.0.0.1:6379', 'user:pa%zzword@127.0.0.1:6379']) {
        const broken = refusal(() => load({ REDIS_URL: url }));
        expect(broken).to.match(/redis\.url: .*not valid percent-encoding: write a "%" in them as %25/);
        expect(broken).not.to.include('pa%zzword');
      }
    });

    it('names every bad key at once', function () {
      const message = refusal(() => load({}, { port: -1, poll: { maxLimit: 0 } }));
      expect(message).to.include('port').and.to.include('poll.maxLimit');
    });

    it('refuses more streams per poll or WebSocket than one cursor holds (a cursor the gateway would issue and then refuse)', function () {
      expect(refusal(() => load({}, { poll: { maxStreams: MAX_CURSOR_STREAMS + 1 } }))).to.include('poll.maxStreams');
      expect(refusal(() => load({}, { ws: { maxSubscriptions: MAX_CURSOR_STREAMS + 1 } }))).to.include('ws.maxSubscriptions');
      expect(load({}, { poll: { maxStreams: MAX_CURSOR_STREAMS }, ws: { maxSubscriptions: MAX_CURSOR_STREAMS } }).ws.maxSubscriptions).to.equal(MAX_CURSOR_STREAMS);
    });

    it('refuses a short secret or API key without repeating it', function () {
      const short = 'short-secret-123';
      const m1 = refusal(() => load({ POLLGATE_SECRET: short }));
      expect(m1).to.include('auth.secret');
      expect(m1).not.to.include(short);
      const m2 = refusal(() => load({ POLLGATE_API_KEYS: 'tiny-key' }));
      expect(m2).to.include('auth.apiKeys');
      expect(m2).not.to.include('tiny-key');
    });

    it('refuses production without a secret and an API key, saying which is missing', function () {
      const both = refusal(() => load({ NODE_ENV: 'production' }));
      expect(both).to.include('auth.secret').and.to.include('POLLGATE_SECRET').and.to.include('auth.apiKeys');
      const noKey = refusal(() => load({ NODE_ENV: 'production', POLLGATE_SECRET: SECRET }));
      expect(noKey).to.include('auth.apiKeys').and.not.to.include('auth.secret');
      const noSecret = refusal(() => load({ NODE_ENV: 'production', POLLGATE_API_KEYS: KEY }));
      expect(noSecret).to.include('auth.secret').and.not.to.include('auth.apiKeys');
    });

    it('refuses the demo token in production', function () {
      expect(refusal(() => load({ NODE_ENV: 'production', POLLGATE_SECRET: SECRET, POLLGATE_API_KEYS: KEY, POLLGATE_DEMO_TOKEN: 'true' }))).to.include('auth.demoToken');
    });

    it('refuses a request timeout that would cut the longest poll hold', function () {
      expect(refusal(() => load({}, { server: { requestTimeoutMs: 55_000 } }))).to.include('server.requestTimeoutMs');
      expect(refusal(() => load({}, { poll: { maxTimeoutSeconds: 120 } }))).to.include('server.requestTimeoutMs');
      expect(load({}, { poll: { maxTimeoutSeconds: 20, defaultTimeoutSeconds: 10 }, server: { requestTimeoutMs: 25_000 } }).server.requestTimeoutMs).to.equal(25_000);
    });

    it('refuses headersTimeoutMs <= keepAliveTimeoutMs', function () {
      const m = refusal(() => load({}, { server: { keepAliveTimeoutMs: 30_000, headersTimeoutMs: 30_000 } }));
      expect(m).to.include('server.headersTimeoutMs').and.to.include('server.keepAliveTimeoutMs');
      expect(load({}, { server: { keepAliveTimeoutMs: 30_000, headersTimeoutMs: 30_001 } }).server.headersTimeoutMs).to.equal(30_001);
    });

    it('refuses defaults above their maximums and data above the body cap', function () {
      expect(refusal(() => load({}, { poll: { defaultTimeoutSeconds: 60 } }))).to.include('poll.defaultTimeoutSeconds');
      expect(refusal(() => load({}, { poll: { defaultLimit: 2000 } }))).to.include('poll.defaultLimit');
      expect(refusal(() => load({}, { limits: { bodyBytes: 2048, dataBytes: 4096 } }))).to.include('limits.dataBytes');
    });

    it('refuses stream metadata that would expire before the messages', function () {
      expect(refusal(() => load({}, { retention: { default: { ttlSeconds: 100, metaTtlSeconds: 50 } } }))).to.include('retention.default.metaTtlSeconds');
      expect(refusal(() => load({}, { retention: { overrides: [{ prefix: 'x:', ttlSeconds: 10 ** 8 }] } }))).to.include('retention.overrides[0].metaTtlSeconds');
    });

    it('refuses CORS origins that are not lower case (browsers send them lower case)', function () {
      expect(refusal(() => load({}, { cors: { origins: ['https://App.example.com'] } }))).to.include('https://App.example.com');
    });
  });
});

describe('loadConfig: issue 21 keys', function () {
  it('defaults presence off, metrics.port off, no hook (fail closed, 5 s allow cache) and a 24 h revoke', function () {
    const c = load();
    expect(c.presence).to.deep.equal({ streams: [], joinLeave: [], pollGraceSeconds: 5, heartbeatSeconds: 5, ttlSeconds: 15 });
    expect(c.metrics.port).to.equal(undefined);
    expect(c.metrics.host).to.equal('127.0.0.1');
    expect(c.hooks).to.deep.equal({ url: '', secret: '', timeoutMs: 1000, failOpen: false, allowCacheSeconds: 5 });
    expect(c.disconnect).to.deep.equal({ revokeSeconds: 86_400, recheckMs: 2000 });
  });

  it('reads POLLGATE_PRESENCE_STREAMS, POLLGATE_METRICS_PORT and POLLGATE_HOOKS_URL', function () {
    const c = load({ POLLGATE_PRESENCE_STREAMS: 'room:*, lobby', POLLGATE_METRICS_PORT: '9464', POLLGATE_HOOKS_URL: 'http://auth.internal/hook' });
    expect(c.presence.streams).to.deep.equal(['room:*', 'lobby']);
    expect(c.metrics.port).to.equal(9464);
    expect(c.hooks.url).to.equal('http://auth.internal/hook');
  });

  it('refuses a hook URL that is not http(s) and a presence ttl under two heartbeats, naming the keys', function () {
    expect(refusal(() => load({}, { hooks: { url: 'ftp://x/hook' } }))).to.match(/hooks\.url/);
    expect(refusal(() => load({}, { presence: { heartbeatSeconds: 10, ttlSeconds: 15 } }))).to.match(/presence\.ttlSeconds must be at least twice presence\.heartbeatSeconds/);
  });
});

describe('retentionFor', function () {
  const c = load({}, {
    retention: {
      default: { maxLength: 500, ttlSeconds: 600, metaTtlSeconds: 6000 },
      overrides: [
        { prefix: 'room:vip:', ttlSeconds: 60 },
        { prefix: 'room:', maxLength: 10 },
        { prefix: 'user:', maxLength: 20, ttlSeconds: 30, metaTtlSeconds: 300 },
      ],
    },
  });

  it('gives the default to streams no prefix matches', function () {
    expect(retentionFor(c, 'prices')).to.deep.equal({ maxLength: 500, ttlSeconds: 600, metaTtlSeconds: 6000 });
    expect(retentionFor(c, 'xroom:1')).to.deep.equal(c.retention.default);
  });

  it('applies a matching prefix, filling what it leaves out from the default', function () {
    expect(retentionFor(c, 'room:1')).to.deep.equal({ maxLength: 10, ttlSeconds: 600, metaTtlSeconds: 6000 });
    expect(retentionFor(c, 'user:bob')).to.deep.equal({ maxLength: 20, ttlSeconds: 30, metaTtlSeconds: 300 });
  });

  it('lets the longest matching prefix win, whatever the order of the list', function () {
    // The winner's missing fields come from the default, not from shorter matching prefixes.
    expect(retentionFor(c, 'room:vip:1')).to.deep.equal({ maxLength: 500, ttlSeconds: 60, metaTtlSeconds: 6000 });
    const reversed = load({}, { retention: { overrides: [{ prefix: 'a', maxLength: 1 }, { prefix: 'ab', maxLength: 2 }] } });
    expect(retentionFor(reversed, 'abc').maxLength).to.equal(2);
    const forward = load({}, { retention: { overrides: [{ prefix: 'ab', maxLength: 2 }, { prefix: 'a', maxLength: 1 }] } });
    expect(retentionFor(forward, 'abc').maxLength).to.equal(2);
  });
});

describe('pollgate CLI', function () {
  const cli = fileURLToPath(new URL('../lib/cli.js', import.meta.url));

  function run(env: Record<string, string>): Promise<{ code: number | null; stderr: string; stdout: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [cli], { env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c));
      child.stderr.on('data', (c: Buffer) => (stderr += c));
      // Safety net only: a CLI that unexpectedly starts listening must not outlive the test.
      const guard = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.once('error', reject);
      child.once('close', (code) => {
        clearTimeout(guard);
        resolve({ code, stdout, stderr });
      });
    });
  }

  it('exits non-zero in production without a secret, naming the missing key', async function () {
    const { code, stderr } = await run({ NODE_ENV: 'production', POLLGATE_API_KEYS: KEY });
    expect(code).to.equal(1);
    expect(stderr).to.include('auth.secret').and.to.include('POLLGATE_SECRET');
    expect(stderr).not.to.match(/\n\s+at /);
  });

  it('exits non-zero on a bad value, naming the key', async function () {
    const { code, stderr } = await run({ NODE_ENV: 'test', POLLGATE_SECRET: SECRET, POLLGATE_API_KEYS: KEY, PORT: 'abc' });
    expect(code).to.equal(1);
    expect(stderr).to.include('PORT');
  });
});
