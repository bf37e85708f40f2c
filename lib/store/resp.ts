/**
 * A RESP2 reply parser and command encoder for the sharded subscriber connections
 * (shard-connection.ts). ioredis matches every `sunsubscribe` reply to the oldest pending
 * command, so the unsolicited one Redis pushes when a slot moves would answer someone else's
 * SSUBSCRIBE; subscribers parse their own replies to tell the two apart.
 */

/** A parsed reply: simple and bulk strings, integers, nil (null), arrays, and errors as RespError. */
export type RespValue = string | number | null | RespValue[] | RespError;

/** An error reply (`-MOVED 123 host:port`). */
export class RespError {
  constructor(readonly message: string) {}
}

/** One command as RESP (an array of bulk strings). */
export function encodeCommand(args: readonly string[]): Buffer {
  let head = `*${args.length}\r\n`;
  const parts: Buffer[] = [];
  for (const arg of args) {
    const bytes = Buffer.from(arg);
    parts.push(Buffer.from(`${head}$${bytes.length}\r\n`), bytes);
    head = '\r\n';
  }
  parts.push(Buffer.from('\r\n'));
  return Buffer.concat(parts);
}

/** Thrown for bytes that are not RESP2: the connection must be dropped. */
export class RespProtocolError extends Error {
  override name = 'RespProtocolError';
}

/**
 * Feeds bytes as they arrive and calls `onReply` for every complete top-level reply, in order.
 * Keeps the unparsed rest (at most one incomplete reply) between calls.
 */
export class RespParser {
  private buffer: Buffer = Buffer.alloc(0);
  private offset = 0;

  constructor(private readonly onReply: (reply: RespValue) => void) {}

  feed(chunk: Buffer): void {
    this.buffer = this.offset < this.buffer.length ? Buffer.concat([this.buffer.subarray(this.offset), chunk]) : chunk;
    this.offset = 0;
    for (;;) {
      const start = this.offset;
      const reply = this.parse();
      if (reply === INCOMPLETE) {
        this.offset = start;
        return;
      }
      this.onReply(reply);
    }
  }

  private parse(): RespValue | typeof INCOMPLETE {
    const line = this.line();
    if (line === undefined) return INCOMPLETE;
    const type = line[0];
    const rest = line.slice(1);
    switch (type) {
      case '+':
        return rest;
      case '-':
        return new RespError(rest);
      case ':':
        return Number(rest);
      case '$': {
        const length = this.length(rest);
        if (length < 0) return null;
        if (this.buffer.length < this.offset + length + 2) return INCOMPLETE;
        const value = this.buffer.toString('utf8', this.offset, this.offset + length);
        this.offset += length + 2;
        return value;
      }
      case '*': {
        const count = this.length(rest);
        if (count < 0) return null;
        const items: RespValue[] = [];
        for (let i = 0; i < count; i++) {
          const item = this.parse();
          if (item === INCOMPLETE) return INCOMPLETE;
          items.push(item);
        }
        return items;
      }
      default:
        throw new RespProtocolError(`unexpected RESP type byte ${JSON.stringify(type)}`);
    }
  }

  /** The next CRLF-terminated line (without it), or undefined when it has not fully arrived. */
  private line(): string | undefined {
    const end = this.buffer.indexOf('\r\n', this.offset, 'latin1');
    if (end < 0) return undefined;
    const text = this.buffer.toString('utf8', this.offset, end);
    this.offset = end + 2;
    return text;
  }

  private length(text: string): number {
    if (!/^-?\d+$/.test(text)) throw new RespProtocolError(`bad RESP length ${JSON.stringify(text)}`);
    return Number(text);
  }
}

const INCOMPLETE = Symbol('incomplete');
