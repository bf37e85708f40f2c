import { expect } from 'chai';
import { OverloadedError, RateLimitedError } from '../../lib/errors.js';
import { ConnectionCaps } from '../../lib/limits/connection-caps.js';

describe('ConnectionCaps', function () {
  const caps = (perSubject = 2, perIp = 3, perProcess = 4) => new ConnectionCaps({ perSubject, perIp, perProcess, retryAfterSeconds: 7 });

  it('refuses a subject over its cap with 429 and Retry-After, other subjects still pass', function () {
    const c = caps();
    c.acquire({ subject: 'alice', ip: 'a' });
    c.acquire({ subject: 'alice', ip: 'b' });
    const err = catchError(() => c.acquire({ subject: 'alice', ip: 'c' }));
    expect(err).to.be.instanceOf(RateLimitedError);
    expect(err.status).to.equal(429);
    expect(err.retryAfter).to.equal(7);
    c.acquire({ subject: 'bob', ip: 'c' });
  });

  it('refuses an IP over its cap with 429, whatever the subjects; API keys (no subject) count per IP', function () {
    const c = caps(10);
    c.acquire({ subject: 'a', ip: 'x' });
    c.acquire({ subject: 'b', ip: 'x' });
    c.acquire({ ip: 'x' });
    expect(catchError(() => c.acquire({ subject: 'c', ip: 'x' }))).to.be.instanceOf(RateLimitedError);
    expect(catchError(() => c.acquire({ ip: 'x' }))).to.be.instanceOf(RateLimitedError);
  });

  it('refuses anyone once the process is full with 503 overloaded', function () {
    const c = caps(10, 10, 2);
    c.acquire({ ip: 'a' });
    c.acquire({ ip: 'b' });
    const err = catchError(() => c.acquire({ ip: 'c' }));
    expect(err).to.be.instanceOf(OverloadedError);
    expect(err.status).to.equal(503);
    expect(err.code).to.equal('overloaded');
    expect(err.retryAfter).to.equal(7);
  });

  it('gives the slot back on release, once only however often release is called', function () {
    const c = caps(1, 1, 1);
    const slot = c.acquire({ subject: 's', ip: 'i' });
    expect(c.size).to.equal(1);
    slot.release();
    slot.release();
    expect(c.size).to.equal(0);
    const again = c.acquire({ subject: 's', ip: 'i' });
    expect(catchError(() => c.acquire({ subject: 's', ip: 'i' }))).to.be.instanceOf(OverloadedError);
    again.release();
    expect(c.size).to.equal(0);
  });

  it('keeps no per-key state once every slot is released', function () {
    const c = caps(5, 5, 10_000);
    const releases = Array.from({ length: 1000 }, (_, i) => c.acquire({ subject: `s${i}`, ip: `ip${i}` }));
    releases.forEach((r) => r.release());
    const maps = c as unknown as { bySubject: Map<string, number>; byIp: Map<string, number> };
    expect(maps.bySubject.size).to.equal(0);
    expect(maps.byIp.size).to.equal(0);
  });
});

function catchError(fn: () => unknown): RateLimitedError | OverloadedError {
  try {
    fn();
  } catch (err) {
    return err as RateLimitedError;
  }
  throw new Error('expected a refusal');
}
