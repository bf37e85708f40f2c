/**
 * Opaque cursors: per stream, the log epoch and the last seq a client has seen.
 *
 * Binary layout, base64url-encoded: [version=1] then per stream [4-byte name hash][6-byte epoch]
 * [seq as LEB128], then an 8-byte HMAC-SHA256 tag. Names are hashed, not stored, so a cursor over
 * 20 streams stays near 350 characters whatever their names. The tag makes edits fail with
 * InvalidCursorError (cursors are not secret, only tamper-evident).
 */
import * as crypto from 'node:crypto';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { InvalidCursorError } from './errors.js';
import { RecentMap } from './recent-map.js';

/** Where a client is in one stream. epoch '' means the stream had no log when the position was taken. */
export interface Position {
  epoch: string;
  seq: number;
}

export const NO_POSITION: Position = Object.freeze({ epoch: '', seq: 0 });

const VERSION = 1;
const HASH_BYTES = 4;
const EPOCH_BYTES = 6;
const TAG_BYTES = 8;
/** The most streams one cursor may hold: poll.maxStreams and ws.maxSubscriptions may be at most this. */
export const MAX_CURSOR_STREAMS = 1000;
/**
 * The longest cursor this codec can issue (MAX_CURSOR_STREAMS entries with 8-byte varints), so
 * that every cursor it gives out is one it takes back; anything longer is refused unread.
 */
const MAX_CURSOR_CHARS = Math.ceil(((1 + MAX_CURSOR_STREAMS * (HASH_BYTES + EPOCH_BYTES + 8) + TAG_BYTES) * 4) / 3);
const ZERO_EPOCH = Buffer.alloc(EPOCH_BYTES);

/** A fresh random epoch: 8 base64url characters (6 bytes, never all zero). */
export function newEpoch(): string {
  for (;;) {
    const bytes = randomBytes(EPOCH_BYTES);
    if (!bytes.equals(ZERO_EPOCH)) return bytes.toString('base64url');
  }
}

/** 32-bit FNV-1a of a stream name (names are ASCII by grammar). */
function nameHash(stream: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < stream.length; i++) {
    h ^= stream.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const SEXTET = new Int8Array(128).fill(-1);
for (let i = 0; i < BASE64URL.length; i++) SEXTET[BASE64URL.charCodeAt(i)] = i;
// Node's base64url decoder takes the base64 alphabet too.
SEXTET['+'.charCodeAt(0)] = 62;
SEXTET['/'.charCodeAt(0)] = 63;

/** Writes an epoch's 6 bytes (zeros for '') at `at`, decoded here without a Buffer; returns the end. */
function writeEpochBytes(out: Buffer, at: number, epoch: string): number {
  if (epoch === '') {
    out.fill(0, at, at + EPOCH_BYTES);
    return at + EPOCH_BYTES;
  }
  if (epoch.length !== 8) throw new Error(`malformed epoch "${epoch}"`);
  let end = at;
  for (let i = 0; i < 8; i += 4) {
    let v = 0;
    for (let k = 0; k < 4; k++) {
      const c = epoch.charCodeAt(i + k);
      const s = c < 128 ? SEXTET[c]! : -1;
      if (s < 0) throw new Error(`malformed epoch "${epoch}"`);
      v = (v << 6) | s;
    }
    out[end++] = v >>> 16;
    out[end++] = (v >>> 8) & 0xff;
    out[end++] = v & 0xff;
  }
  return end;
}

/** LEB128 at `at`; returns the end. */
function writeVarint(out: Buffer, at: number, value: number): number {
  let v = value;
  let end = at;
  while (v >= 0x80) {
    out[end++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  out[end++] = v;
  return end;
}

// crypto.hash (Node >= 20.12) hashes in one call, without a Hash object.
const oneShot = (crypto as { hash?: (alg: string, data: Buffer, enc: 'buffer') => Buffer }).hash;
const HMAC_BLOCK = 64;

/**
 * HMAC-SHA256 (RFC 2104) with precomputed padded keys, from two one-shot hashes: every answer
 * signs a cursor, and createHmac's per-call set-up (OpenSSL 3 fetches the MAC each time) cost
 * several times the hashing (docs/PERFORMANCE.md). Falls back to createHmac without crypto.hash.
 *
 * The message is written by the caller into `message()`, right after the inner padded key, and
 * the outer hash's input is a second buffer kept for it: signing a cursor makes no Buffer but the
 * two digests and one view, where concatenating the pads, the body and the tag made seven
 * (docs/PERFORMANCE.md, "A cursor signed in place").
 */
class HmacSha256 {
  /** The inner padded key, then room for a message. */
  private scratch: Buffer;
  /** The outer padded key, then the inner digest. */
  private readonly outer: Buffer;

  constructor(private readonly key: Buffer) {
    // Keys longer than a block would be hashed first; ours is a 32-byte digest.
    if (key.length > HMAC_BLOCK) throw new Error('HMAC key longer than a block');
    this.scratch = Buffer.alloc(HMAC_BLOCK + 256, 0x36);
    this.outer = Buffer.alloc(HMAC_BLOCK + 32, 0x5c);
    for (let i = 0; i < key.length; i++) {
      this.scratch[i]! ^= key[i]!;
      this.outer[i]! ^= key[i]!;
    }
  }

  /** A buffer with room for `bytes` of message (and a tag after it) from MESSAGE_AT; valid until the next call. */
  message(bytes: number): Buffer {
    if (this.scratch.length < HMAC_BLOCK + bytes) {
      const grown = Buffer.alloc(HMAC_BLOCK + bytes * 2);
      this.scratch.copy(grown, 0, 0, HMAC_BLOCK);
      this.scratch = grown;
    }
    return this.scratch;
  }

  /** The MAC of message()'s bytes from MESSAGE_AT up to `end`. */
  digestMessage(end: number): Buffer {
    const scratch = this.scratch;
    if (!oneShot) return createHmac('sha256', this.key).update(scratch.subarray(MESSAGE_AT, end)).digest();
    const inner = oneShot('sha256', scratch.subarray(0, end), 'buffer');
    inner.copy(this.outer, HMAC_BLOCK);
    return oneShot('sha256', this.outer, 'buffer');
  }

  digest(data: Buffer): Buffer {
    data.copy(this.message(data.length), MESSAGE_AT);
    return this.digestMessage(MESSAGE_AT + data.length);
  }
}

/** Where a message starts in HmacSha256.message(): after the inner padded key. */
const MESSAGE_AT = HMAC_BLOCK;

/**
 * A cursor's entries as name hash, position, name hash, position, ...; the first entry of a hash
 * wins. A flat array, not a Map: cursors hold a few streams, and the issued memo holds thousands.
 */
type Entries = (number | Position)[];

function positionOf(entries: Entries, hash: number): Position | undefined {
  for (let i = 0; i < entries.length; i += 2) if (entries[i] === hash) return entries[i + 1] as Position;
  return undefined;
}

/** Cursors issued lately, remembered with their decoded form (see CursorCodec.issued). */
const ISSUED_REMEMBERED = 4096;

export class CursorCodec {
  private readonly mac: HmacSha256;
  /**
   * The last cursors this codec encoded, with their entries by name hash. A client's next poll
   * usually brings back the cursor it was just given, which then needs no HMAC to check: it is a
   * string this process signed itself. Bounded (the oldest are forgotten); a miss decodes as usual.
   */
  private readonly issued = new RecentMap<string, Entries>(ISSUED_REMEMBERED);
  /**
   * The last cursor encoded and the positions it encodes (stream, epoch, seq, ...): a broadcast
   * answers thousands of polls in a row with the same positions, and each would otherwise pay an
   * HMAC for the same string.
   */
  private lastCursor = '';
  private lastPositions: (string | number)[] = [];

  constructor(secret: string) {
    this.mac = new HmacSha256(createHmac('sha256', secret).update('pollgate cursor v1').digest());
  }

  /** Encodes positions in the order given. Positions at seq 0 drop their epoch (they match any). */
  encode(positions: ReadonlyMap<string, Position>): string {
    if (this.isLast(positions)) return this.lastCursor;
    const cursor = this.sign(positions);
    const last: (string | number)[] = [];
    for (const [stream, pos] of positions) last.push(stream, pos.seq === 0 ? '' : pos.epoch, pos.seq);
    this.lastPositions = last;
    this.lastCursor = cursor;
    if (!this.issued.has(cursor)) {
      const entries: Entries = [];
      for (const [stream, pos] of positions) {
        const h = nameHash(stream);
        if (positionOf(entries, h) === undefined) entries.push(h, pos.seq === 0 ? NO_POSITION : { epoch: pos.epoch, seq: pos.seq });
      }
      this.issued.set(cursor, entries);
    }
    return cursor;
  }

  /** The positions are those of the last cursor encoded (epochs at seq 0 aside). */
  private isLast(positions: ReadonlyMap<string, Position>): boolean {
    const last = this.lastPositions;
    if (last.length !== positions.size * 3 || last.length === 0) return false;
    let i = 0;
    for (const [stream, pos] of positions) {
      if (last[i] !== stream || last[i + 1] !== (pos.seq === 0 ? '' : pos.epoch) || last[i + 2] !== pos.seq) return false;
      i += 3;
    }
    return true;
  }

  private sign(positions: ReadonlyMap<string, Position>): string {
    // Each entry: a 4-byte hash, a 6-byte epoch, a varint of at most 8 bytes (seqs below 2^53).
    const buf = this.mac.message(1 + positions.size * (HASH_BYTES + EPOCH_BYTES + 8) + TAG_BYTES);
    let at = MESSAGE_AT;
    buf[at++] = VERSION;
    for (const [stream, pos] of positions) {
      at = buf.writeUInt32BE(nameHash(stream), at);
      at = writeEpochBytes(buf, at, pos.seq === 0 ? '' : pos.epoch);
      at = writeVarint(buf, at, pos.seq);
    }
    const mac = this.mac.digestMessage(at);
    for (let i = 0; i < TAG_BYTES; i++) buf[at + i] = mac[i]!;
    return buf.toString('base64url', MESSAGE_AT, at + TAG_BYTES);
  }

  /**
   * Decodes a cursor and returns the positions of the given streams that it holds (streams it
   * does not mention are absent from the map). Throws InvalidCursorError on any malformation.
   */
  decode(cursor: string, streams: readonly string[]): Map<string, Position> {
    const entries = this.issued.get(cursor) ?? this.verify(cursor);
    const out = new Map<string, Position>();
    for (const s of streams) {
      const p = positionOf(entries, nameHash(s));
      if (p) out.set(s, p);
    }
    return out;
  }

  /** Checks a cursor's format and tag and returns its entries by name hash; throws InvalidCursorError. */
  private verify(cursor: string): Entries {
    if (cursor.length > MAX_CURSOR_CHARS || !/^[A-Za-z0-9_-]+$/.test(cursor)) {
      throw new InvalidCursorError('cursor is malformed: pass back the cursor string the gateway gave you');
    }
    const raw = Buffer.from(cursor, 'base64url');
    // Node ignores a dangling character and the unused low bits of the last one: without this, a
    // few edited cursors would decode to the same bytes and pass the tag.
    if (raw.toString('base64url') !== cursor) throw new InvalidCursorError('cursor is malformed: pass back the cursor string the gateway gave you');
    if (raw.length < 1 + TAG_BYTES) throw new InvalidCursorError('cursor is truncated');
    const body = raw.subarray(0, raw.length - TAG_BYTES);
    const tag = raw.subarray(raw.length - TAG_BYTES);
    if (!timingSafeEqual(tag, this.tag(body))) {
      throw new InvalidCursorError('cursor was not issued by this gateway (or was altered)');
    }
    if (body[0] !== VERSION) throw new InvalidCursorError('cursor version is not supported');
    const entries: Entries = [];
    let i = 1;
    while (i < body.length) {
      // Each entry holds at least one varint byte after the hash and the epoch.
      if (i + HASH_BYTES + EPOCH_BYTES + 1 > body.length) throw new InvalidCursorError('cursor is truncated');
      const h = body.readUInt32BE(i);
      i += HASH_BYTES;
      const e = body.subarray(i, i + EPOCH_BYTES);
      i += EPOCH_BYTES;
      let seq = 0;
      let scale = 1;
      for (;;) {
        if (i >= body.length || scale > 2 ** 49) throw new InvalidCursorError('cursor is malformed');
        const b = body[i++]!;
        seq += (b & 0x7f) * scale;
        if (b < 0x80) break;
        scale *= 0x80;
      }
      const epoch = e.equals(ZERO_EPOCH) ? '' : Buffer.from(e).toString('base64url');
      if (positionOf(entries, h) === undefined) entries.push(h, seq === 0 ? NO_POSITION : { epoch, seq });
    }
    return entries;
  }

  private tag(body: Buffer): Buffer {
    return this.mac.digest(body).subarray(0, TAG_BYTES);
  }
}
