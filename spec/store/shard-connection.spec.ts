/**
 * ShardConnection against a scripted fake node: each command is answered by its own replies, and
 * the `sunsubscribe` Redis pushes when a slot moves is told apart from an answer (ioredis would
 * let it answer the oldest pending command, confirming an SSUBSCRIBE that Redis has not run).
 */
import { expect } from 'chai';
import { createServer, type Server, type Socket } from 'node:net';
import { RespParser, type RespValue } from '../../lib/store/resp.js';
import { ShardConnection } from '../../lib/store/shard-connection.js';
import { waitFor } from '../support/wait.js';

/** A fake node that hands each received command to the test, which writes what Redis would. */
class FakeNode {
  readonly commands: string[][] = [];
  socket?: Socket;
  private readonly server: Server;
  private waiting: (() => void)[] = [];

  constructor() {
    this.server = createServer((socket) => {
      this.socket = socket;
      socket.setNoDelay(true);
      const parser = new RespParser((r: RespValue) => {
        const args = r as string[];
        // The connection's hello is answered at once.
        if (args[0] === 'CLIENT' || args[0] === 'AUTH') socket.write('+OK\r\n');
        else this.commands.push(args);
        for (const w of this.waiting.splice(0)) w();
      });
      socket.on('data', (c: Buffer) => parser.feed(c));
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return (this.server.address() as { port: number }).port;
  }

  async untilCommands(n: number): Promise<void> {
    while (this.commands.length < n) await new Promise<void>((r) => this.waiting.push(r));
  }

  push(type: string, channel: string, count: number | string): void {
    this.socket!.write(`*3\r\n$${type.length}\r\n${type}\r\n$${Buffer.byteLength(channel)}\r\n${channel}\r\n${typeof count === 'number' ? `:${count}` : `$${count.length}\r\n${count}`}\r\n`);
  }

  close(): Promise<void> {
    this.socket?.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}

describe('ShardConnection', () => {
  let node: FakeNode;
  let connection: ShardConnection;
  let events: { messages: [string, string][]; dropped: string[]; closed: Error[] };

  beforeEach(async () => {
    node = new FakeNode();
    const port = await node.listen();
    events = { messages: [], dropped: [], closed: [] };
    connection = new ShardConnection(`127.0.0.1:${port}`, { host: '127.0.0.1', port, tls: false }, {
      message: (channel, payload) => events.messages.push([channel, payload]),
      dropped: (channel) => events.dropped.push(channel),
      closed: (err) => events.closed.push(err),
    });
    await connection.connect(2000);
  });
  afterEach(async () => {
    connection.close();
    await node.close();
  });

  it('resolves an SSUBSCRIBE only on its own replies, not on a sunsubscribe Redis pushed meanwhile', async () => {
    const [reply] = connection.ssubscribe([['w:{a}', 'w:{a}x']]);
    let answered = false;
    void reply!.then(() => (answered = true));
    await node.untilCommands(1);
    expect(node.commands[0]).to.deep.equal(['SSUBSCRIBE', 'w:{a}', 'w:{a}x']);
    node.push('sunsubscribe', 'w:{old}', 0);
    node.push('ssubscribe', 'w:{a}', 1);
    // Read in order: once this arrives, everything before it was handled.
    node.push('smessage', 'w:{a}', 'marker');
    await waitFor(() => events.messages.length === 1, 'the marker');
    expect(answered, 'answered before its second channel').to.equal(false);
    expect(events.dropped).to.deep.equal(['w:{old}']);
    node.push('ssubscribe', 'w:{a}x', 2);
    await reply;
    expect([...connection.channels]).to.deep.equal(['w:{a}', 'w:{a}x']);
  });

  it('tells an answered SUNSUBSCRIBE from a pushed one, and passes smessages on', async () => {
    const [sub] = connection.ssubscribe([['w:{a}']]);
    await node.untilCommands(1);
    node.push('ssubscribe', 'w:{a}', 1);
    await sub;
    node.push('smessage', 'w:{a}', 'e:1');
    const [unsub] = connection.sunsubscribe([['w:{a}']]);
    await node.untilCommands(2);
    node.push('sunsubscribe', 'w:{a}', 0);
    await unsub;
    expect(events.dropped).to.deep.equal([]);
    expect(events.messages).to.deep.equal([['w:{a}', 'e:1']]);
    expect(connection.channels.size).to.equal(0);
  });

  it('sends one SSUBSCRIBE per slot batch and rejects a batch with its error reply (MOVED)', async () => {
    const replies = connection.ssubscribe([['w:{a}'], ['w:{b}']]);
    await node.untilCommands(2);
    node.socket!.write('-MOVED 3300 127.0.0.1:7001\r\n');
    node.push('ssubscribe', 'w:{b}', 1);
    const [a, b] = await Promise.allSettled(replies);
    expect(a).to.have.property('status', 'rejected');
    expect((a as PromiseRejectedResult).reason.message).to.equal('MOVED 3300 127.0.0.1:7001');
    expect(b).to.have.property('status', 'fulfilled');
    expect([...connection.channels]).to.deep.equal(['w:{b}']);
  });

  it('closes (and says so once) when a reply cannot be matched, failing what is pending', async () => {
    const [reply] = connection.ssubscribe([['w:{a}']]);
    await node.untilCommands(1);
    node.push('ssubscribe', 'w:{zzz}', 1);
    const settled = await Promise.allSettled([reply]);
    expect(settled[0]!.status).to.equal('rejected');
    expect(events.closed).to.have.length(1);
    expect(connection.isOpen).to.equal(false);
  });

  it('reports the connection closed when the node goes away', async () => {
    const [reply] = connection.ssubscribe([['w:{a}']]);
    await node.untilCommands(1);
    node.socket!.destroy();
    const [settled] = await Promise.allSettled([reply]);
    expect(settled!.status).to.equal('rejected');
    await waitFor(() => events.closed.length === 1, 'the closed event');
  });
});
