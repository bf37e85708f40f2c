/**
 * Every Redis key and channel name, built in one place. A stream's keys share the hash tag
 * {<stream>} so its append script touches a single Redis Cluster slot (stream names cannot
 * contain braces).
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
