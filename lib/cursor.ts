/**
 * Opaque cursors: per stream, the log epoch and the last seq a client has seen.
 *
 * Binary layout, base64url-encoded: [version=2] then per stream [4-byte name hash][6-byte epoch]
 * [seq as LEB128], then an 8-byte tag (sipTag). Names are hashed, not stored, so a cursor over
 * 20 streams stays near 350 characters whatever their names. The tag makes edits fail with
 * InvalidCursorError (cursors are not secret, only tamper-evident). Version 1 cursors, the same
 * layout with an HMAC-SHA256 tag, are still taken back.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import siphash24 from 'siphash24';
import { InvalidCursorError } from './errors.js';
import { RecentMap } from './recent-map.js';

/** Where a client is in one stream. epoch '' means the stream had no log when the position was taken. */
export interface Position {
  epoch: string;
  seq: number;
}

export const NO_POSITION: Position = Object.freeze({ epoch: '', seq: 0 });

/** The versions of cursors: every one is taken back; which one is issued is the codec's choice. */
const VERSION = 2;
const LEGACY_VERSION = 1;
export type CursorVersion = typeof VERSION | typeof LEGACY_VERSION;
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

/**
 * The tag of a version 2 cursor: SipHash-2-4 (the siphash24 package) of the bytes before it,
 * under a 16-byte key. Every answer tags a cursor, and HMAC-SHA256 cost 1.7 µs a tag here (two
 * OpenSSL digests, each looked up on every call) where SipHash, a MAC made for short inputs,
 * costs 0.1 (docs/PERFORMANCE.md, "A cursor tagged with SipHash"). The tag only makes a cursor
 * tamper-evident (a cursor carries positions, never rights): 64 bits of a keyed PRF do that as
 * well as 64 bits of an HMAC.
 */
function sipTag(key: Buffer, bytes: Buffer, end: number, out: Buffer): Buffer {
  siphash24(bytes.subarray(0, end), key, out, true);
  return out;
}

/** The tag of a version 1 cursor (issued before version 2): HMAC-SHA256, its first 8 bytes. */
function legacyTag(key: Buffer, bytes: Buffer, end: number): Buffer {
  return createHmac('sha256', key).update(bytes.subarray(0, end)).digest().subarray(0, TAG_BYTES);
}

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
  /** The SipHash key of version 2 tags; the HMAC key of version 1 tags, still taken back. */
  private readonly sipKey: Buffer;
  private readonly legacyKey: Buffer;
  /** Where a cursor is written before it is encoded: grown to the largest so far. */
  private scratch = Buffer.alloc(256);
  /** Where a tag being checked is computed. */
  private readonly expected = Buffer.alloc(TAG_BYTES);
  /**
   * The last cursors this codec encoded, with their entries by name hash. A client's next poll
   * usually brings back the cursor it was just given, which then needs no tag checked: it is a
   * string this process signed itself. Bounded (the oldest are forgotten); a miss decodes as usual.
   */
  private readonly issued = new RecentMap<string, Entries>(ISSUED_REMEMBERED);
  /**
   * The last cursor encoded and the positions it encodes (stream, epoch, seq, ...): a broadcast
   * answers thousands of polls in a row with the same positions, and each would otherwise pay a
   * tag for the same string.
   */
  private lastCursor = '';
  private lastPositions: (string | number)[] = [];

  /**
   * `issue`: the version of the cursors this codec encodes. 2 unless nodes that read only version 1
   * are still serving (a rolling upgrade from, or a rollback to, a release before version 2).
   */
  constructor(secret: string, private readonly issue: CursorVersion = VERSION) {
    this.sipKey = createHmac('sha256', secret).update('pollgate cursor v2').digest().subarray(0, 16);
    this.legacyKey = createHmac('sha256', secret).update('pollgate cursor v1').digest();
  }

  /** Encodes positions in the order given. Positions at seq 0 drop their epoch (they match any). */
  encode(positions: ReadonlyMap<string, Position>): string {
    if (this.isLast(positions)) return this.lastCursor;
    const cursor = this.sign(positions);
    const last: (string | number)[] = [];
    for (const [stream, pos] of positions) last.push(stream, pos.seq === 0 ? '' : pos.epoch, pos.seq);
    this.lastPositions = last;
    this.lastCursor = cursor;
    // A cursor's string fixes its entries: whatever the memo holds for it already is the same.
    const entries: Entries = [];
    for (const [stream, pos] of positions) {
      const h = nameHash(stream);
      if (positionOf(entries, h) === undefined) entries.push(h, pos.seq === 0 ? NO_POSITION : { epoch: pos.epoch, seq: pos.seq });
    }
    this.issued.remember(cursor, entries);
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
    const most = 1 + positions.size * (HASH_BYTES + EPOCH_BYTES + 8) + TAG_BYTES;
    if (this.scratch.length < most) this.scratch = Buffer.alloc(most * 2);
    const buf = this.scratch;
    let at = 0;
    buf[at++] = this.issue;
    for (const [stream, pos] of positions) {
      at = buf.writeUInt32BE(nameHash(stream), at);
      at = writeEpochBytes(buf, at, pos.seq === 0 ? '' : pos.epoch);
      at = writeVarint(buf, at, pos.seq);
    }
    if (this.issue === VERSION) sipTag(this.sipKey, buf, at, buf.subarray(at, at + TAG_BYTES));
    else legacyTag(this.legacyKey, buf, at).copy(buf, at);
    return buf.toString('base64url', 0, at + TAG_BYTES);
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
    const end = raw.length - TAG_BYTES;
    const version = raw[0];
    let expected: Buffer;
    if (version === VERSION) expected = sipTag(this.sipKey, raw, end, this.expected);
    else if (version === LEGACY_VERSION) expected = legacyTag(this.legacyKey, raw, end);
    else throw new InvalidCursorError('cursor version is not supported: pass back the cursor string the gateway gave you');
    if (!timingSafeEqual(raw.subarray(end), expected)) {
      throw new InvalidCursorError('cursor was not issued by this gateway (or was altered)');
    }
    const body = raw.subarray(0, end);
    const entries: Entries = [];
    let i = 1;
    while (i < body.length) {
      // Each entry holds at least one varint byte after the hash and the epoch.
      if (i + HASH_BYTES + EPOCH_BYTES + 1 > body.length) throw new InvalidCursorError('cursor is truncated');
      const h = body.readUInt32BE(i);
      i += HASH_BYTES;
      const epochAt = i;
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
      const epoch = body.compare(ZERO_EPOCH, 0, EPOCH_BYTES, epochAt, epochAt + EPOCH_BYTES) === 0 ? '' : body.toString('base64url', epochAt, epochAt + EPOCH_BYTES);
      if (positionOf(entries, h) === undefined) entries.push(h, seq === 0 ? NO_POSITION : { epoch, seq });
    }
    return entries;
  }
}
