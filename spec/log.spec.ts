import { expect } from 'chai';
import fc from 'fast-check';
import { configuredUrlForLogs, redactUrl } from '../lib/log.js';
import { describeTarget } from '../lib/store/redis-target.js';

const SECRETS = ['token', 'access_token', 'api_key', 'key'];

/** What a reader of the query sees: every parameter whose decoded name is a secret has no readable value left. */
function exposedSecrets(url: string): string[] {
  const q = url.indexOf('?');
  if (q < 0) return [];
  return [...new URLSearchParams(url.slice(q + 1))].filter(([name, value]) => SECRETS.includes(name.toLowerCase()) && value !== '' && value !== '[REDACTED]').map(([, v]) => v);
}

describe('redactUrl', () => {
  it('leaves no secret parameter readable, whatever the case or escaping of its name, and changes nothing else', () => {
    const name = fc.constantFrom('token', 'TOKEN', 'Token', '%74oken', 't%6Fken', 'to+ken', '?token', '??token', '?%74oken', 'access_token', 'api_key', 'KEY', 'key', 'keys', 'streams', 'cursor', 'x%zz', '');
    const value = fc.stringMatching(/^[A-Za-z0-9._%+:-]{0,12}$/);
    fc.assert(
      fc.property(fc.array(fc.tuple(name, fc.boolean(), value), { maxLength: 6 }), (params) => {
        const query = params.map(([n, hasValue, v]) => (hasValue ? `${n}=${v}` : n)).join('&');
        const url = `/poll?${query}`;
        const out = redactUrl(url);
        expect(exposedSecrets(out)).to.deep.equal([]);
        // Parameters that are not secrets come through as written.
        const keep = (u: string) => u.slice(u.indexOf('?') + 1).split('&').filter((p) => !p.endsWith('=[REDACTED]'));
        const redactedCount = out.split('&').filter((p) => p.endsWith('=[REDACTED]')).length;
        expect(keep(out).length + redactedCount).to.equal(query.split('&').length);
        for (const p of keep(out)) expect(query.split('&')).to.include(p);
      }),
      { numRuns: 2000 },
    );
  });

  it('returns a URL without a query, or without secrets, unchanged', () => {
    expect(redactUrl('/poll')).to.equal('/poll');
    expect(redactUrl('/poll?streams=a%3Ab&cursor=AbC&timeout=25')).to.equal('/poll?streams=a%3Ab&cursor=AbC&timeout=25');
    expect(redactUrl('/poll?streams=a&%74oken=s3cret&x=1')).to.equal('/poll?streams=a&%74oken=[REDACTED]&x=1');
    // The gateway reads `??token=` as `token` (URLSearchParams drops one leading '?').
    expect(redactUrl('/poll??token=s3cret&streams=a')).to.equal('/poll??token=[REDACTED]&streams=a');
  });
});

describe('configuredUrlForLogs', () => {
  it('shows a configured URL without its user-info or query, for the Redis server and the HTTP hook alike', () => {
    expect(configuredUrlForLogs('rediss://app:s3cret@redis.example:6380/2?family=6')).to.equal('rediss://[REDACTED]@redis.example:6380/2?[REDACTED]');
    expect(describeTarget({ url: 'redis://:s3cret@127.0.0.1:6379' })).to.equal('redis://[REDACTED]@127.0.0.1:6379');
    expect(configuredUrlForLogs('redis://127.0.0.1:6379')).to.equal('redis://127.0.0.1:6379');
  });

  it('shows a Redis URL given without a scheme as the redis:// URL ioredis reads, its password left out', () => {
    expect(describeTarget({ url: 'app:s3cret@redis.internal:6379' })).to.equal('redis://[REDACTED]@redis.internal:6379');
    expect(describeTarget({ url: 'localhost:6379' })).to.equal('redis://localhost:6379');
    expect(describeTarget({ url: 'redis-host' })).to.equal('redis://redis-host');
    expect(describeTarget({ url: '/tmp/redis.sock' })).to.equal('/tmp/redis.sock');
  });
});
