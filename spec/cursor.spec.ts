import { expect } from 'chai';
import { createHmac } from 'node:crypto';
import siphash24 from 'siphash24';
import { CursorCodec, MAX_CURSOR_STREAMS, NO_POSITION, newEpoch, type Position } from '../lib/cursor.js';
import { InvalidCursorError } from '../lib/errors.js';

const SECRET = 'cursor-secret-0123456789abcdefghijklmnop';
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function positions(entries: [string, Position][]): Map<string, Position> {
  return new Map(entries);
}

describe('CursorCodec', function () {
  const codec = new CursorCodec(SECRET);
  const epochA = newEpoch();
  const epochB = newEpoch();

  it('round-trips the positions of the streams asked for', function () {
    const cursor = codec.encode(positions([['room:1', { epoch: epochA, seq: 7 }], ['user:bob', { epoch: epochB, seq: 1 }]]));
    expect(cursor).to.match(/^[A-Za-z0-9_-]+$/);
    const back = codec.decode(cursor, ['room:1', 'user:bob']);
    expect([...back]).to.deep.equal([['room:1', { epoch: epochA, seq: 7 }], ['user:bob', { epoch: epochB, seq: 1 }]]);
  });

  it('returns only the streams asked for, in the order asked', function () {
    const cursor = codec.encode(positions([['a', { epoch: epochA, seq: 1 }], ['b', { epoch: epochB, seq: 2 }]]));
    expect([...codec.decode(cursor, ['b'])]).to.deep.equal([['b', { epoch: epochB, seq: 2 }]]);
    expect([...codec.decode(cursor, ['b', 'a']).keys()]).to.deep.equal(['b', 'a']);
  });

  it('leaves streams the cursor does not hold absent', function () {
    const cursor = codec.encode(positions([['a', { epoch: epochA, seq: 3 }]]));
    const back = codec.decode(cursor, ['a', 'not-in-cursor']);
    expect(back.has('not-in-cursor')).to.equal(false);
    expect(back.size).to.equal(1);
  });

  it('drops the epoch of a position at seq 0 (it matches any later epoch)', function () {
    const cursor = codec.encode(positions([['a', { epoch: epochA, seq: 0 }], ['b', NO_POSITION]]));
    expect(codec.decode(cursor, ['a', 'b']).get('a')).to.deep.equal(NO_POSITION);
    expect(codec.decode(cursor, ['a', 'b']).get('b')).to.deep.equal(NO_POSITION);
  });

  it('encodes an empty position set', function () {
    expect(codec.decode(codec.encode(new Map()), ['a']).size).to.equal(0);
  });

  for (const seq of [1, 127, 128, 16_383, 16_384, 2 ** 31, 2 ** 32 + 5, 2 ** 49, 2 ** 53 - 2, Number.MAX_SAFE_INTEGER]) {
    it(`round-trips seq ${seq}`, function () {
      const cursor = codec.encode(positions([['s', { epoch: epochA, seq }]]));
      expect(codec.decode(cursor, ['s']).get('s')).to.deep.equal({ epoch: epochA, seq });
    });
  }

  it('refuses every single-character change and every truncation with InvalidCursorError', function () {
    const cursor = codec.encode(positions([['room:1', { epoch: epochA, seq: 300 }], ['room:2', { epoch: epochB, seq: 5 }]]));
    const accepted: string[] = [];
    for (let i = 0; i < cursor.length; i++) {
      for (const c of BASE64URL) {
        if (c === cursor[i]) continue;
        const changed = cursor.slice(0, i) + c + cursor.slice(i + 1);
        try {
          codec.decode(changed, ['room:1', 'room:2']);
          accepted.push(changed);
        } catch (err) {
          expect(err).to.be.instanceOf(InvalidCursorError);
        }
      }
    }
    for (let n = 0; n < cursor.length; n++) {
      expect(() => codec.decode(cursor.slice(0, n), ['room:1']), `truncated to ${n}`).to.throw(InvalidCursorError);
    }
    expect(accepted, 'altered cursors that were accepted').to.deep.equal([]);
  });

  it('refuses a cursor with a character added', function () {
    const cursor = codec.encode(positions([['room:1', { epoch: epochA, seq: 1 }]]));
    for (const c of 'AQg_') expect(() => codec.decode(cursor + c, ['room:1'])).to.throw(InvalidCursorError);
  });

  it('refuses garbage, padding, non-base64url characters and oversized input', function () {
    for (const bad of ['', '!!!!', 'abc=', 'a b', 'ab+/cd', 'é', 'A'.repeat(20), 'A'.repeat(30_000)]) {
      expect(() => codec.decode(bad, ['a']), JSON.stringify(bad.slice(0, 20))).to.throw(InvalidCursorError);
    }
  });

  /** SipHash-2-4 as the siphash24 package computes it, under the key a codec derives from SECRET. */
  const sipKey = createHmac('sha256', SECRET).update('pollgate cursor v2').digest().subarray(0, 16);
  const sipHex = (bytes: Buffer) => Buffer.from(siphash24(bytes, sipKey)).toString('hex');
  /** A cursor's bytes with its body re-tagged as version 1 (HMAC-SHA256) from before version 2. */
  function asVersion1(cursor: string): string {
    const raw = Buffer.from(cursor, 'base64url');
    const body = Buffer.from(raw.subarray(0, raw.length - 8));
    body[0] = 1;
    const key = createHmac('sha256', SECRET).update('pollgate cursor v1').digest();
    return Buffer.concat([body, createHmac('sha256', key).update(body).digest().subarray(0, 8)]).toString('base64url');
  }

  it('computes SipHash-2-4 as its authors do (their test vectors: key 00..0f, message 00..n-1)', function () {
    // From the SipHash paper's reference vectors (the same as OpenSSL's `openssl mac ... SIPHASH`).
    const vectors: [number, string][] = [
      [0, '310e0edd47db6f72'], [1, 'fd67dc93c539f874'], [7, '37d1018bf50002ab'], [8, '6224939a79f5f593'],
      [9, 'b0e4a90bdf82009e'], [15, 'e545be4961ca29a1'], [16, 'db9bc2577fcc2a3f'], [17, '9447be2cf5e99a69'],
      [30, '28ef495c53a387ad'], [63, '724506eb4c328a95'],
    ];
    const key = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
    for (const [n, hex] of vectors) {
      const message = Buffer.from(Array.from({ length: n }, (_, i) => i));
      expect(Buffer.from(siphash24(message, key)).toString('hex'), `${n} bytes`).to.equal(hex);
    }
  });

  it('tags a cursor with SipHash-2-4 of the bytes before the tag (version 2)', function () {
    for (let n = 0; n < 30; n++) {
      const raw = Buffer.from(codec.encode(positions(Array.from({ length: n % 4 }, (_, i): [string, Position] => [`s${n}:${i}`, { epoch: epochA, seq: n * 1000 + i }]))), 'base64url');
      const body = raw.subarray(0, raw.length - 8);
      expect(body[0]).to.equal(2);
      expect(raw.subarray(raw.length - 8).toString('hex')).to.equal(sipHex(body));
    }
  });

  it('signs cursors of any size, larger than the buffer it signs in at first', function () {
    // A codec of its own: the buffer it signs in grows with the largest cursor so far. The largest
    // a poll may ask for (poll.maxStreams at its maximum, every seq 8 varint bytes) is taken back too.
    const fresh = new CursorCodec(SECRET);
    for (const n of [1, 14, 15, 60, MAX_CURSOR_STREAMS, 3]) {
      const given = positions(Array.from({ length: n }, (_, i): [string, Position] => [`big${n}:${i}`, { epoch: epochA, seq: 2 ** 52 + i }]));
      const cursor = fresh.encode(given);
      const raw = Buffer.from(cursor, 'base64url');
      expect(raw.subarray(raw.length - 8).toString('hex')).to.equal(sipHex(raw.subarray(0, raw.length - 8)));
      expect(new CursorCodec(SECRET).decode(cursor, [...given.keys()])).to.deep.equal(given);
    }
  });

  it('takes back a version 1 cursor (HMAC-SHA256 tag), issued before version 2, and refuses an altered one', function () {
    const given = positions([['room:1', { epoch: epochA, seq: 300 }], ['room:2', NO_POSITION], ['room:3', { epoch: epochB, seq: 2 ** 40 }]]);
    const v1 = asVersion1(codec.encode(given));
    expect([...new CursorCodec(SECRET).decode(v1, ['room:1', 'room:2', 'room:3'])]).to.deep.equal([...given]);
    const raw = Buffer.from(v1, 'base64url');
    raw[6] ^= 1;
    expect(() => codec.decode(raw.toString('base64url'), ['room:1'])).to.throw(InvalidCursorError, /not issued by this gateway/);
    expect(() => new CursorCodec('another-secret-0123456789abcdefghijklmn').decode(v1, ['room:1'])).to.throw(InvalidCursorError);
  });

  it('issues version 1 cursors when told to (a rolling upgrade from a release that reads only those)', function () {
    const given = positions([['room:1', { epoch: epochA, seq: 300 }], ['room:2', NO_POSITION]]);
    const v1 = new CursorCodec(SECRET, 1).encode(given);
    // Byte for byte what a version 1 node issued, so such a node takes it back.
    expect(v1).to.equal(asVersion1(codec.encode(given)));
    expect([...codec.decode(v1, ['room:1', 'room:2'])]).to.deep.equal([...given]);
    expect([...new CursorCodec(SECRET, 1).decode(v1, ['room:1', 'room:2'])]).to.deep.equal([...given]);
  });

  it('refuses a cursor of another version, even one tagged as version 2 would be', function () {
    const raw = Buffer.from(codec.encode(positions([['a', { epoch: epochA, seq: 1 }]])), 'base64url');
    for (const version of [0, 3, 255]) {
      const body = Buffer.from(raw.subarray(0, raw.length - 8));
      body[0] = version;
      const tagged = Buffer.concat([body, Buffer.from(siphash24(body, sipKey))]).toString('base64url');
      expect(() => codec.decode(tagged, ['a'])).to.throw(InvalidCursorError, /version is not supported/);
    }
  });

  it('refuses a cursor issued under another secret', function () {
    const other = new CursorCodec('another-secret-0123456789abcdefghijklmn');
    const cursor = other.encode(positions([['a', { epoch: epochA, seq: 1 }]]));
    expect(() => codec.decode(cursor, ['a'])).to.throw(InvalidCursorError);
  });

  it('keeps a 20-stream cursor with 200-character names well under 2 KB in a poll URL', function () {
    const streams = Array.from({ length: 20 }, (_, i) => `${String(i).padStart(2, '0')}${'x'.repeat(198)}`);
    const cursor = codec.encode(new Map(streams.map((s) => [s, { epoch: newEpoch(), seq: Number.MAX_SAFE_INTEGER }])));
    // 8-byte varints (the largest seqs) included: under 512 characters whatever the names.
    expect(cursor.length).to.be.below(512);
    expect(codec.decode(cursor, streams).size).to.equal(20);
    // The query names the streams too; with 40-character names the whole URL stays well under 2 KB.
    const names = Array.from({ length: 20 }, (_, i) => `user:${String(i).padStart(2, '0')}-${'n'.repeat(32)}`);
    const short = codec.encode(new Map(names.map((s) => [s, { epoch: newEpoch(), seq: 123_456_789 }])));
    const url = `/poll?streams=${names.join(',')}&cursor=${short}&timeout=25&conn=abcdefgh`;
    expect(url.length).to.be.below(2048);
  });
});

describe('CursorCodec memos (cursors it issued lately)', function () {
  const epoch = newEpoch();
  const many = (n: number) => positions(Array.from({ length: n }, (_, i): [string, Position] => [`s${i}`, { epoch, seq: i + 1 }]));

  it('decodes a cursor it just issued exactly as a fresh codec with the same secret does', function () {
    const issuer = new CursorCodec(SECRET);
    for (const p of [many(1), many(3), positions([['a', { epoch, seq: 0 }], ['b', NO_POSITION], ['c', { epoch, seq: 2 ** 40 }]])]) {
      const cursor = issuer.encode(p);
      const streams = [...p.keys(), 'absent'];
      expect([...issuer.decode(cursor, streams)]).to.deep.equal([...new CursorCodec(SECRET).decode(cursor, streams)]);
    }
  });

  it('gives the same string for the same positions, and a different one when a position moves', function () {
    const issuer = new CursorCodec(SECRET);
    const a = issuer.encode(many(2));
    expect(issuer.encode(many(2))).to.equal(a);
    expect(new CursorCodec(SECRET).encode(many(2))).to.equal(a);
    expect(issuer.encode(positions([['s0', { epoch, seq: 1 }], ['s1', { epoch, seq: 3 }]]))).not.to.equal(a);
    expect(issuer.encode(positions([['s1', { epoch, seq: 2 }], ['s0', { epoch, seq: 1 }]]))).not.to.equal(a);
  });

  it('still refuses an altered copy of a cursor it issued', function () {
    const issuer = new CursorCodec(SECRET);
    const cursor = issuer.encode(many(2));
    const i = 5;
    const altered = cursor.slice(0, i) + (cursor[i] === 'A' ? 'B' : 'A') + cursor.slice(i + 1);
    expect(() => issuer.decode(altered, ['s0'])).to.throw(InvalidCursorError);
  });

  it('stays bounded, and decodes cursors issued long ago through the tag', function () {
    const issuer = new CursorCodec(SECRET);
    const first = issuer.encode(many(1));
    for (let i = 0; i < 5000; i++) issuer.encode(positions([['x', { epoch, seq: i + 1 }]]));
    const memos = issuer as unknown as { issued: Map<string, unknown> };
    expect(memos.issued.size).to.be.at.most(4096);
    expect(memos.issued.has(first)).to.equal(false);
    expect([...issuer.decode(first, ['s0'])]).to.deep.equal([['s0', { epoch, seq: 1 }]]);
  });
});

describe('newEpoch', function () {
  it('gives 8 base64url characters, different each time', function () {
    const a = newEpoch();
    expect(a).to.match(/^[A-Za-z0-9_-]{8}$/);
    expect(newEpoch()).not.to.equal(a);
  });
});
