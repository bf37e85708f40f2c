/**
 * The Store contract, run against every implementation (memory-store.spec.ts, redis-store.spec.ts).
 * A factory gives a fresh store plus ways to make a stream's messages or whole log disappear
 * (expiry, or a Redis restarted without persistence) without waiting for a TTL.
 */
import { expect } from 'chai';
import type { RetentionRule } from '../../lib/config.js';
import { HEAD_ONLY, SERVER_SENDER, WAKE_MESSAGES_MAX_BYTES, messageBytes, messageHead, messageTail, type NewMessage, type Store, type WakeHint } from '../../lib/store/store.js';

export interface StoreHarness {
  store: Store;
  /** The stream's messages expire (its metadata stays). */
  expireMessages(stream: string): Promise<void>;
  /** Everything of the stream disappears, metadata included. */
  expireAll(stream: string): Promise<void>;
  close(): Promise<void>;
}

export type StoreFactory = (retention: (stream: string) => RetentionRule) => Promise<StoreHarness>;

const DEFAULT_RULE: RetentionRule = { maxLength: 1000, ttlSeconds: 3600, metaTtlSeconds: 86400 };

function msg(id: string, data: unknown = id, sender = SERVER_SENDER): NewMessage {
  return { id, sender, tail: messageTail(id, 1700000000000, JSON.stringify(data)) };
}

function parsed(messages: string[]): { stream: string; seq: number; id: string; data: unknown }[] {
  return messages.map((m) => JSON.parse(m));
}

function nextWake(store: Store): Promise<{ stream: string; hint: WakeHint }> {
  return new Promise((resolve) => store.setListener({ wake: (stream, hint) => resolve({ stream, hint }), resync: () => {} }));
}

export function storeContract(name: string, factory: StoreFactory): void {
  describe(`Store contract: ${name}`, function () {
    let h: StoreHarness;
    let rule: RetentionRule;
    beforeEach(async () => {
      rule = { ...DEFAULT_RULE };
      h = await factory((stream) => (stream.startsWith('short:') ? { ...rule, maxLength: 3 } : rule));
    });
    afterEach(async () => h.close());

    it('reads an unknown stream as having no log', async () => {
      const r = await h.store.read('nothing:here', 0, 10);
      expect(r).to.include({ epoch: '', lastSeq: 0, firstSeq: 1 });
      expect(r.messages).to.deep.equal([]);
    });

    it('assigns seqs from 1, one per message, in order', async () => {
      const a = await h.store.append('s', [msg('a'), msg('b')]);
      const c = await h.store.append('s', [msg('c')]);
      expect(a.map((r) => r.seq)).to.deep.equal([1, 2]);
      expect(c[0]).to.deep.equal({ stream: 's', seq: 3, id: 'c', duplicate: false });
    });

    it('stores each message as JSON with stream, seq, id, ts and data', async () => {
      await h.store.append('room:1', [msg('x', { hello: ['w', 1] })]);
      const r = await h.store.read('room:1', 0, 10);
      expect(r.messages[0]).to.equal(`${messageHead('room:1')}1${messageTail('x', 1700000000000, '{"hello":["w",1]}')}`);
      expect(JSON.parse(r.messages[0]!)).to.deep.equal({ stream: 'room:1', seq: 1, id: 'x', ts: 1700000000000, data: { hello: ['w', 1] } });
    });

    it('reads the messages after a seq, oldest first, up to a limit', async () => {
      await h.store.append('s', ['a', 'b', 'c', 'd', 'e'].map((id) => msg(id)));
      const r = await h.store.read('s', 2, 2);
      expect(r).to.include({ lastSeq: 5, firstSeq: 1, after: 2 });
      expect(parsed(r.messages).map((m) => m.seq)).to.deep.equal([3, 4]);
      expect((await h.store.read('s', 5, 10)).messages).to.deep.equal([]);
    });

    it('reads only the head with limit 0', async () => {
      await h.store.append('s', [msg('a'), msg('b')]);
      const r = await h.store.read('s', 0, 0);
      expect(r.messages).to.deep.equal([]);
      expect(r.lastSeq).to.equal(2);
      expect(r.epoch).to.match(/^[A-Za-z0-9_-]{8}$/);
    });

    it('keeps one epoch for the life of a log', async () => {
      await h.store.append('s', [msg('a')]);
      const e1 = (await h.store.read('s', 0, 0)).epoch;
      await h.store.append('s', [msg('b')]);
      expect((await h.store.read('s', 0, 0)).epoch).to.equal(e1);
    });

    it('keeps only the newest maxLength messages', async () => {
      for (const id of ['a', 'b', 'c', 'd', 'e']) await h.store.append('short:1', [msg(id)]);
      const r = await h.store.read('short:1', 0, 10);
      expect(r).to.include({ firstSeq: 3, lastSeq: 5, after: 2 });
      expect(parsed(r.messages).map((m) => m.id)).to.deep.equal(['c', 'd', 'e']);
    });

    it('trims within one batch too', async () => {
      await h.store.append('short:2', ['a', 'b', 'c', 'd', 'e'].map((id) => msg(id)));
      const r = await h.store.read('short:2', 0, 10);
      expect(parsed(r.messages).map((m) => m.seq)).to.deep.equal([3, 4, 5]);
    });

    it('does not append an id already in the retained log and returns the original seq', async () => {
      await h.store.append('s', [msg('k1'), msg('k2')]);
      const again = await h.store.append('s', [msg('k1', 'changed'), msg('k3')]);
      expect(again).to.deep.equal([
        { stream: 's', seq: 1, id: 'k1', duplicate: true },
        { stream: 's', seq: 3, id: 'k3', duplicate: false },
      ]);
      const r = await h.store.read('s', 0, 10);
      expect(parsed(r.messages).map((m) => m.data)).to.deep.equal(['k1', 'k2', 'k3']);
    });

    it('treats a repeated id inside one batch as a duplicate', async () => {
      const res = await h.store.append('s', [msg('same'), msg('same')]);
      expect(res.map((r) => [r.seq, r.duplicate])).to.deep.equal([[1, false], [1, true]]);
    });

    it('scopes ids to a stream', async () => {
      await h.store.append('s1', [msg('id')]);
      const r = await h.store.append('s2', [msg('id')]);
      expect(r[0]!.duplicate).to.equal(false);
    });

    it('scopes ids to their sender: another sender\'s id never makes a message vanish (issue 23)', async () => {
      // A client that may publish to the stream sends first, under the id the backend will use.
      await h.store.append('s', [msg('order-42', 'from the client', 'alice')]);
      const backend = await h.store.append('s', [msg('order-42', 'from the backend')]);
      const other = await h.store.append('s', [msg('order-42', 'from bob', 'bob')]);
      expect(backend[0]).to.deep.equal({ stream: 's', seq: 2, id: 'order-42', duplicate: false });
      expect(other[0]).to.deep.equal({ stream: 's', seq: 3, id: 'order-42', duplicate: false });
      const r = await h.store.read('s', 0, 10);
      expect(parsed(r.messages).map((m) => [m.id, m.data])).to.deep.equal([
        ['order-42', 'from the client'], ['order-42', 'from the backend'], ['order-42', 'from bob'],
      ]);
    });

    it('still deduplicates a retry by the same sender, each sender against its own ids', async () => {
      await h.store.append('s', [msg('k', 'a', 'alice'), msg('k', 'server')]);
      const retries = await h.store.append('s', [msg('k', 'again', 'alice'), msg('k', 'again')]);
      expect(retries.map((r) => [r.seq, r.duplicate])).to.deep.equal([[1, true], [2, true]]);
    });

    it('keeps no retry key for an id the gateway made: the same id named later is a new message', async () => {
      const made = { ...msg('made-here', 'first'), idMadeHere: true };
      const first = await h.store.append('s', [made]);
      // Nobody can retry with an id it never had; a sender naming it later sends a new message.
      const named = await h.store.append('s', [msg('made-here', 'named')]);
      const madeAgain = await h.store.append('s', [{ ...made, tail: msg('made-here', 'again').tail }]);
      expect([first, named, madeAgain].map((r) => [r[0]!.seq, r[0]!.duplicate])).to.deep.equal([[1, false], [2, false], [3, false]]);
      // A named id is still remembered, whatever came before it.
      expect((await h.store.append('s', [msg('made-here', 'retry')]))[0]).to.deep.equal({ stream: 's', seq: 2, id: 'made-here', duplicate: true });
      const r = await h.store.read('s', 0, 10);
      expect(parsed(r.messages).map((m) => m.data)).to.deep.equal(['first', 'named', 'again']);
    });

    it('trims messages without a retry key beside ones with it, and still deduplicates what is retained', async () => {
      const made = (id: string) => ({ ...msg(id), idMadeHere: true });
      await h.store.append('short:3', [made('m1'), msg('k1'), made('m2'), msg('k2'), made('m3')]);
      const r = await h.store.read('short:3', 0, 10);
      expect(parsed(r.messages).map((m) => m.id)).to.deep.equal(['m2', 'k2', 'm3']);
      // k1 was trimmed away (maxLength 3): no longer a duplicate; k2 is retained: still one.
      const again = await h.store.append('short:3', [msg('k2'), msg('k1')]);
      expect(again.map((x) => [x.seq, x.duplicate])).to.deep.equal([[4, true], [6, false]]);
    });

    it('stops a read before the first message that would pass maxBytes, and says how big it is', async () => {
      const sizes = [100, 300, 200, 50];
      await h.store.append('b:1', sizes.map((n, i) => msg(`m${i}`, 'x'.repeat(n))));
      const all = (await h.store.read('b:1', 0, 10)).messages;
      const bytes = all.map(messageBytes);
      const r = await h.store.read('b:1', 0, 10, bytes[0]! + bytes[1]! + 10);
      expect(parsed(r.messages).map((m) => m.seq)).to.deep.equal([1, 2]);
      expect(r.nextBytes).to.equal(bytes[2]);
      expect(r).to.include({ lastSeq: 4, after: 0 });
      // Exactly at the bound is within it; the limit stops a read without a nextBytes.
      expect((await h.store.read('b:1', 1, 10, bytes[1]! + bytes[2]!)).messages).to.have.length(2);
      expect((await h.store.read('b:1', 0, 1, 1_000_000)).nextBytes).to.equal(undefined);
      expect((await h.store.read('b:1', 0, 10, 1_000_000)).messages).to.deep.equal(all);
      expect((await h.store.read('b:1', 0, 10, 0)).messages).to.deep.equal(all);
    });

    it('returns no message at all when the first one alone passes maxBytes', async () => {
      await h.store.append('b:2', [msg('big', 'x'.repeat(5000)), msg('small')]);
      const r = await h.store.read('b:2', 0, 10, 1000);
      expect(r.messages).to.deep.equal([]);
      expect(r.nextBytes).to.equal(messageBytes((await h.store.read('b:2', 0, 1)).messages[0]!));
      expect(r).to.include({ lastSeq: 2, after: 0 });
    });

    it('counts bytes, not characters, against maxBytes', async () => {
      // Three bytes a character in UTF-8: 100 characters are 300 bytes of data.
      await h.store.append('b:3', [msg('u1', '€'.repeat(100)), msg('u2', '€'.repeat(100))]);
      const one = messageBytes((await h.store.read('b:3', 0, 1)).messages[0]!);
      expect(one).to.be.greaterThan(300);
      const r = await h.store.read('b:3', 0, 10, one + 200);
      expect(r.messages).to.have.length(1);
      expect(r.nextBytes).to.equal(one);
    });

    it('bounds long reads by bytes too (many slices)', async () => {
      await h.store.append('b:4', Array.from({ length: 100 }, (_, i) => msg(`m${i}`, 'y'.repeat(40 + (i % 7)))));
      const bytes = (await h.store.read('b:4', 0, 1000)).messages.map(messageBytes);
      // After seq 3: exactly 70 messages fit (seqs 4..73), and the 71st would not.
      const bound = bytes.slice(3, 73).reduce((a, b) => a + b, 0) + bytes[73]! - 1;
      const r = await h.store.read('b:4', 3, 1000, bound);
      expect(parsed(r.messages).map((m) => m.seq)).to.deep.equal(Array.from({ length: 70 }, (_, i) => i + 4));
      expect(r.nextBytes).to.equal(bytes[73]);
    });

    it('forgets ids of messages trimmed from the log', async () => {
      for (const id of ['a', 'b', 'c', 'd']) await h.store.append('short:3', [msg(id)]);
      const r = await h.store.append('short:3', [msg('a')]);
      expect(r[0]).to.include({ seq: 5, duplicate: false });
    });

    it('keeps the epoch and last seq when the messages expire, so readers see a gap', async () => {
      await h.store.append('s', [msg('a'), msg('b')]);
      const e1 = (await h.store.read('s', 0, 0)).epoch;
      await h.expireMessages('s');
      const r = await h.store.read('s', 0, 10);
      expect(r).to.include({ epoch: e1, lastSeq: 2, firstSeq: 3 });
      expect(r.messages).to.deep.equal([]);
      const next = await h.store.append('s', [msg('c')]);
      expect(next[0]!.seq).to.equal(3);
      expect((await h.store.read('s', 0, 0)).epoch).to.equal(e1);
    });

    it('starts a new epoch from seq 1 when the whole log disappeared', async () => {
      await h.store.append('s', [msg('a'), msg('b')]);
      const e1 = (await h.store.read('s', 0, 0)).epoch;
      await h.expireAll('s');
      expect((await h.store.read('s', 0, 0)).epoch).to.equal('');
      const r = await h.store.append('s', [msg('a')]);
      expect(r[0]).to.include({ seq: 1, duplicate: false });
      const e2 = (await h.store.read('s', 0, 0)).epoch;
      expect(e2).to.not.equal('').and.not.equal(e1);
    });

    it('wakes a subscriber with the new head after an append', async () => {
      await h.store.subscribe('w:1');
      const woke = nextWake(h.store);
      await h.store.append('w:1', [msg('a'), msg('b')]);
      const { stream, hint } = await woke;
      expect(stream).to.equal('w:1');
      expect(hint.lastSeq).to.equal(2);
      expect(hint.epoch).to.equal((await h.store.read('w:1', 0, 0)).epoch);
    });

    it('stops waking after unsubscribe', async () => {
      await h.store.subscribe('w:2');
      await h.store.subscribe('w:3');
      await h.store.unsubscribe('w:2');
      const woke = nextWake(h.store);
      await h.store.append('w:2', [msg('a')]);
      await h.store.append('w:3', [msg('b')]);
      // Wake-ups arrive in publish order, so the first one seen must be w:3's.
      expect((await woke).stream).to.equal('w:3');
    });

    it('does not wake for a duplicate-only append', async () => {
      await h.store.append('w:4', [msg('a')]);
      await h.store.subscribe('w:4');
      await h.store.subscribe('w:5');
      const woke = nextWake(h.store);
      await h.store.append('w:4', [msg('a')]);
      await h.store.append('w:5', [msg('b')]);
      expect((await woke).stream).to.equal('w:5');
    });

    it('carries the appended messages in the wake-up when they are small', async () => {
      await h.store.append('w:6', [msg('a')]);
      await h.store.subscribe('w:6');
      const woke = nextWake(h.store);
      // A duplicate in the batch is not appended, so it is not carried either.
      await h.store.append('w:6', [msg('b'), msg('a'), msg('c')]);
      const { hint } = await woke;
      const r = await h.store.read('w:6', 1, 10);
      expect(hint).to.deep.equal({ epoch: r.epoch, lastSeq: 3, messages: r.messages });
    });

    it('wakes without messages when the append is larger than a wake-up may carry', async () => {
      await h.store.subscribe('w:7');
      const woke = nextWake(h.store);
      await h.store.append('w:7', [msg('a', 'x'.repeat(WAKE_MESSAGES_MAX_BYTES))]);
      const { hint } = await woke;
      expect(hint).to.deep.equal({ epoch: (await h.store.read('w:7', 0, 0)).epoch, lastSeq: 1 });
    });

    it('wakes without messages when the append itself outgrew the retained log', async () => {
      await h.store.subscribe('short:w8');
      const woke = nextWake(h.store);
      await h.store.append('short:w8', ['a', 'b', 'c', 'd'].map((id) => msg(id)));
      const { hint } = await woke;
      expect(hint.lastSeq).to.equal(4);
      expect(hint.messages).to.equal(undefined);
    });

    it('gives a knownHead (when it gives one at all) equal to the head a read returns', async () => {
      // Optional: the Redis store gives one only while its tail cache follows the stream.
      const agrees = async (stream: string) => {
        const known = h.store.knownHead?.(stream);
        if (!known) return;
        const r = await h.store.read(stream, HEAD_ONLY, 0);
        expect(known, stream).to.deep.equal({ epoch: r.epoch, lastSeq: r.lastSeq });
      };
      await h.store.subscribe('k:1');
      await agrees('k:1');
      await h.store.read('k:1', 0, 10);
      for (const id of ['a', 'b', 'c']) {
        const woke = nextWake(h.store);
        await h.store.append('k:1', [msg(id)]);
        await woke;
        await agrees('k:1');
        await h.store.read('k:1', 0, 10);
        await agrees('k:1');
      }
      await h.store.append('k:2', [msg('a')]);
      await agrees('k:2');
      await h.expireMessages('k:2');
      await agrees('k:2');
    });

    it('answers ping', async () => {
      await h.store.ping();
    });
  });
}
