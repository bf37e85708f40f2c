/**
 * The RESP2 parser and encoder of the sharded subscriber connections: every reply shape, however
 * the bytes are split, and streams of replies in order.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { encodeCommand, RespError, RespParser, RespProtocolError, type RespValue } from '../../lib/store/resp.js';

/** RESP2 bytes for a value, as Redis would send it. */
function encode(value: RespValue): string {
  if (value === null) return '$-1\r\n';
  if (value instanceof RespError) return `-${value.message}\r\n`;
  if (typeof value === 'number') return `:${value}\r\n`;
  if (typeof value === 'string') return `$${Buffer.byteLength(value)}\r\n${value}\r\n`;
  return `*${value.length}\r\n${value.map(encode).join('')}`;
}

const text = fc.string({ unit: 'binary', maxLength: 40 });
const reply: fc.Arbitrary<RespValue> = fc.letrec<{ value: RespValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    text,
    fc.integer(),
    fc.constant(null),
    text.filter((t) => !/[\r\n]/.test(t)).map((t) => new RespError(t)),
    fc.array(tie('value'), { maxLength: 4 }),
  ),
})).value;

function parseAll(bytes: Buffer, cuts: number[]): RespValue[] {
  const out: RespValue[] = [];
  const parser = new RespParser((r) => out.push(r));
  let at = 0;
  for (const cut of [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)) {
    parser.feed(bytes.subarray(at, cut));
    at = cut;
  }
  parser.feed(bytes.subarray(at));
  return out;
}

describe('RespParser', () => {
  it('parses every reply shape in order, however the bytes arrive', () => {
    fc.assert(fc.property(fc.array(reply, { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 10 }), (replies, cuts) => {
      const bytes = Buffer.from(replies.map(encode).join(''));
      expect(parseAll(bytes, cuts)).to.deep.equal(replies);
    }));
  });

  it('reads a push a byte at a time', () => {
    const bytes = Buffer.from(encode(['smessage', 'pg:wake:{a}', 'e1:3\n{"seq":3}']) + encode(['sunsubscribe', 'pg:wake:{a}', 0]));
    const out: RespValue[] = [];
    const parser = new RespParser((r) => out.push(r));
    for (let i = 0; i < bytes.length; i++) parser.feed(bytes.subarray(i, i + 1));
    expect(out).to.deep.equal([['smessage', 'pg:wake:{a}', 'e1:3\n{"seq":3}'], ['sunsubscribe', 'pg:wake:{a}', 0]]);
  });

  it('throws on bytes that are not RESP2', () => {
    const parser = new RespParser(() => undefined);
    expect(() => parser.feed(Buffer.from('HTTP/1.1 200 OK\r\n'))).to.throw(RespProtocolError);
    expect(() => new RespParser(() => undefined).feed(Buffer.from('$x\r\n'))).to.throw(RespProtocolError);
  });
});

describe('encodeCommand', () => {
  it('writes an array of bulk strings, lengths in bytes', () => {
    expect(encodeCommand(['SSUBSCRIBE', 'pg:wake:{é}']).toString()).to.equal('*2\r\n$10\r\nSSUBSCRIBE\r\n$12\r\npg:wake:{é}\r\n');
  });

  it('round-trips through the parser as an array of its arguments', () => {
    fc.assert(fc.property(fc.array(text, { minLength: 1, maxLength: 5 }), (args) => {
      expect(parseAll(encodeCommand(args), [])).to.deep.equal([args]);
    }));
  });
});
