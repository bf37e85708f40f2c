/**
 * Every Redis key and channel name, built in one place. A stream's keys and its wake-up channel
 * share the hash tag {<stream>}, so its append script (and the SPUBLISH inside it) touches a
 * single Redis Cluster slot (stream names cannot contain braces).
 */
export class RedisKeys {
  constructor(private readonly prefix: string) {}

  meta(stream: string): string {
    return `${this.prefix}{${stream}}:meta`;
  }

  log(stream: string): string {
    return `${this.prefix}{${stream}}:log`;
  }

  ids(stream: string): string {
    return `${this.prefix}{${stream}}:ids`;
  }

  wakeChannel(stream: string): string {
    return `${this.prefix}wake:{${stream}}`;
  }

  /** The stream a wake-up channel belongs to, or undefined for channels that are not ours. */
  streamOfChannel(channel: string): string | undefined {
    const head = `${this.prefix}wake:{`;
    if (!channel.startsWith(head) || !channel.endsWith('}')) return undefined;
    return channel.slice(head.length, -1);
  }
}

/** Redis Cluster hash slots. */
export const CLUSTER_SLOTS = 16384;

/** The cluster slot of every key and the wake-up channel of a (non-empty) stream: CRC16 of its hash tag. */
export function streamSlot(stream: string): number {
  return crc16(Buffer.from(stream)) % CLUSTER_SLOTS;
}

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    table[i] = crc & 0xffff;
  }
  return table;
})();

/** CRC16-CCITT (XMODEM), the hash Redis Cluster uses for slots. */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc;
}
