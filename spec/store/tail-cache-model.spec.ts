/**
 * TailCache against a model of one Redis stream, its pub/sub channel and the command connection
 * (fast-check): random appends (ours and other gateways'), maxLength trims, TTL expiry of the log
 * and the metadata, wake-ups carried or bare, reads whose execution and reply interleave with
 * wake-ups, and dropped subscriber connections. Whenever the cache answers, the answer must equal
 * a read of the log at a state no older than the cache may lag: the state before the oldest
 * wake-up still in flight, and never before an append of ours already acknowledged.
 *
 * On a Redis Cluster, two streams on different shards share the cache, and each loses its
 * subscription on its own (its shard's connection drops, or its slot migrates: the new owner's
 * wake-ups go nowhere until the old owner pushes `sunsubscribe`). A wake-up lost that way counts
 * as in flight until that push is delivered: the latency the design accepts.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { TailCache, expiryMargin, type SeedTicket } from '../../lib/store/tail-cache.js';
import type { StreamRead, WakeHint } from '../../lib/store/store.js';

const S = 's';
const RULE = { maxLength: 5, ttlMs: 3000 };
const META_TTL_MS = 6000;
const MARGIN = expiryMargin(RULE.ttlMs);

interface Snapshot {
  epoch: string;
  lastSeq: number;
  firstSeq: number;
  messages: string[];
}

type SubItem = { kind: 'wake'; hint: WakeHint; at: number; version: number } | { kind: 'confirm' } | { kind: 'sunsubscribe' };
type CmdItem = { kind: 'read'; ticket?: SeedTicket; after: number; limit: number; result?: { read: StreamRead; life: number } } | { kind: 'appended'; epoch: string; seq: number; version: number };

class Model {
  /** Shared by the streams of one cache; see tick(). */
  clock = { now: 1000 };
  epochs = 0;
  state: Snapshot = { epoch: '', lastSeq: 0, firstSeq: 1, messages: [] };
  logExpiresAt = 0;
  metaExpiresAt = 0;
  /** Every state the log went through; index = version. */
  versions: Snapshot[] = [];
  subscribed = false;
  sub: SubItem[] = [];
  cmd: CmdItem[] = [];
  /** Our newest acknowledged append: the cache may not answer from before it. */
  floorVersion = 0;
  answers = 0;
  /** The slot moved away: appends are on the new owner and their wake-ups reach nobody. */
  moved = false;
  /** The first version whose wake-up was lost that way, until the old owner's sunsubscribe is delivered. */
  lostSince?: number;
  lostAt?: number;

  constructor(readonly cache = new TailCache({ maxMessages: 4, maxBytes: 1 << 20, totalBytes: 1 << 20, retention: () => RULE, now: () => this.now }), readonly stream = S, clock?: { now: number }) {
    if (clock) this.clock = clock;
    this.versions.push(this.copy());
  }

  get now(): number {
    return this.clock.now;
  }

  set now(ms: number) {
    this.clock.now = ms;
  }

  copy(): Snapshot {
    return { ...this.state, messages: [...this.state.messages] };
  }

  get version(): number {
    return this.versions.length - 1;
  }

  /** Applies TTL expiry up to now, as Redis would. */
  expire(): void {
    if (this.state.epoch === '') return;
    if (this.now >= this.metaExpiresAt) this.state = { epoch: '', lastSeq: 0, firstSeq: 1, messages: [] };
    else if (this.now >= this.logExpiresAt && this.state.messages.length) this.state = { ...this.state, firstSeq: this.state.lastSeq + 1, messages: [] };
    else return;
    this.versions.push(this.copy());
  }

  append(n: number, carry: boolean, ours: boolean): void {
    this.expire();
    if (this.state.epoch === '') this.state = { epoch: `e${++this.epochs}`, lastSeq: 0, firstSeq: 1, messages: [] };
    const added: string[] = [];
    for (let i = 0; i < n; i++) added.push(`${this.state.epoch}#${this.state.lastSeq + i + 1}`);
    const messages = [...this.state.messages, ...added].slice(-RULE.maxLength);
    const lastSeq = this.state.lastSeq + n;
    this.state = { epoch: this.state.epoch, lastSeq, firstSeq: lastSeq - messages.length + 1, messages };
    this.logExpiresAt = this.now + RULE.ttlMs;
    this.metaExpiresAt = this.now + META_TTL_MS;
    this.versions.push(this.copy());
    const hint: WakeHint = { epoch: this.state.epoch, lastSeq };
    if (carry && n <= RULE.maxLength) hint.messages = added;
    if (this.moved) {
      this.lostSince ??= this.version;
      this.lostAt ??= this.now;
    }
    else if (this.subscribed) this.sub.push({ kind: 'wake', hint, at: this.now, version: this.version });
    if (ours) this.cmd.push({ kind: 'appended', epoch: this.state.epoch, seq: lastSeq, version: this.version });
  }

  issueRead(after: number, limit: number): void {
    this.cmd.push({ kind: 'read', ticket: this.cache.ticket(this.stream), after, limit });
  }

  /** Redis runs the oldest read not yet run. */
  execRead(): void {
    const item = this.cmd.find((c) => c.kind === 'read' && !c.result);
    if (!item || item.kind !== 'read') return;
    this.expire();
    const s = this.state;
    let life = -1;
    if (s.epoch !== '') {
      life = this.metaExpiresAt - this.now;
      if (s.messages.length) life = Math.min(life, this.logExpiresAt - this.now);
    }
    item.result = { read: readOf(s, item.after, item.limit, this.stream), life };
  }

  /** A read sent, run and answered with nothing else happening meanwhile (after whatever was queued before it). */
  roundTrip(after: number, limit: number): void {
    this.issueRead(after, limit);
    while (this.cmd.some((c) => c.kind === 'read' && !c.result)) this.execRead();
    while (this.cmd.length) this.replyCmd();
  }

  replyCmd(): void {
    const item = this.cmd[0];
    if (!item || (item.kind === 'read' && !item.result)) return;
    this.cmd.shift();
    if (item.kind === 'appended') {
      this.cache.appended(this.stream, item.epoch, item.seq);
      this.floorVersion = Math.max(this.floorVersion, item.version);
    } else if (item.ticket) {
      this.cache.seed(this.stream, item.ticket, item.result!.read, item.result!.life);
    }
  }

  deliverSub(): void {
    const item = this.sub.shift();
    if (!item) return;
    if (item.kind === 'confirm') this.cache.open(this.stream);
    else if (item.kind === 'wake') this.cache.wake(this.stream, item.hint);
    else this.loseShard();
  }

  /** The one subscriber connection dropped: every stream of the cache is forgotten. */
  drop(): void {
    this.subscribed = false;
    this.sub = [];
    this.cache.clear();
  }

  /** This stream's subscription alone was lost (its shard's connection, or the pushed sunsubscribe). */
  loseShard(): void {
    this.subscribed = false;
    this.sub = [];
    this.moved = false;
    this.lostSince = this.lostAt = undefined;
    this.cache.close(this.stream);
  }

  /** The slot migrates: the new owner takes it (appends and reads go there), the old one lets go later. */
  move(): void {
    if (this.subscribed && !this.moved) this.moved = true;
  }

  /** The old owner gives the slot up and pushes sunsubscribe, after the wake-ups it sent before. */
  letGo(): void {
    if (this.moved && !this.sub.some((i) => i.kind === 'sunsubscribe')) this.sub.push({ kind: 'sunsubscribe' });
  }

  subscribe(): void {
    if (this.subscribed || this.moved) return;
    this.subscribed = true;
    this.sub.push({ kind: 'confirm' });
  }

  /** Time passes, but never so much that a wake-up in flight is older than the margin (the documented assumption). */
  tick(ms: number): void {
    this.now += Math.min(ms, this.room(ms));
  }

  /** How far the clock may move: a wake-up in flight (or lost until the push) stays within the margin. */
  room(ms: number): number {
    const oldest = this.sub.find((i) => i.kind === 'wake') as { at: number } | undefined;
    let at = oldest?.at;
    if (this.lostAt !== undefined) at = Math.min(at ?? this.lostAt, this.lostAt);
    return at === undefined ? ms : Math.max(0, at + MARGIN - 1 - this.now);
  }

  query(after: number, limit: number): void {
    const answer = this.cache.read(this.stream, after, limit);
    this.expire();
    if (!answer) return;
    this.answers++;
    const oldestPending = this.sub.find((i) => i.kind === 'wake') as { version: number } | undefined;
    let lag = oldestPending ? oldestPending.version - 1 : this.version;
    if (this.lostSince !== undefined) lag = Math.min(lag, this.lostSince - 1);
    const low = Math.max(this.floorVersion, lag);
    const allowed = this.versions.slice(low).map((v) => readOf(v, after, limit, this.stream));
    expect(allowed, `cache answered ${JSON.stringify(answer)} at ${this.now}`).to.deep.include(answer);
  }
}

function readOf(s: Snapshot, after: number, limit: number, stream = S): StreamRead {
  if (s.epoch === '') return { stream, epoch: '', lastSeq: 0, firstSeq: 1, after, messages: [] };
  const from = Math.max(after + 1, s.firstSeq);
  const messages = limit > 0 && from <= s.lastSeq ? s.messages.slice(from - s.firstSeq, from - s.firstSeq + limit) : [];
  return { stream, epoch: s.epoch, lastSeq: s.lastSeq, firstSeq: s.firstSeq, after: Math.max(after, s.firstSeq - 1), messages };
}

const position = fc.oneof(fc.integer({ min: 0, max: 40 }), fc.constant(Number.MAX_SAFE_INTEGER));
const action = fc.oneof(
  { weight: 3, arbitrary: fc.record({ t: fc.constant('append' as const), n: fc.oneof(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 7 })), carry: fc.oneof(fc.constant(true), fc.boolean()), ours: fc.boolean() }) },
  { weight: 7, arbitrary: fc.record({ t: fc.constant('deliver' as const) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('issue' as const), after: position, limit: fc.integer({ min: 0, max: 6 }) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('exec' as const) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('roundTrip' as const), after: position, limit: fc.integer({ min: 0, max: 6 }) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('reply' as const) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 2500 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('drop' as const) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('subscribe' as const) }) },
  { weight: 6, arbitrary: fc.record({ t: fc.constant('query' as const), after: position, limit: fc.integer({ min: 0, max: 6 }) }) },
);

describe('TailCache against a model log', () => {
  it('answers only what a read of the log would have returned', () => {
    let answered = 0;
    fc.assert(
      fc.property(fc.array(action, { minLength: 10, maxLength: 150, size: 'max' }), (actions) => {
        const model = new Model();
        model.subscribe();
        for (const a of actions) {
          switch (a.t) {
            case 'append': model.append(a.n, a.carry, a.ours); break;
            case 'deliver': model.deliverSub(); break;
            case 'issue': model.issueRead(a.after, a.limit); break;
            case 'exec': model.execRead(); break;
            case 'roundTrip': model.roundTrip(a.after, a.limit); break;
            case 'reply': model.replyCmd(); break;
            case 'tick': model.tick(a.ms); break;
            case 'drop': model.drop(); break;
            case 'subscribe': model.subscribe(); break;
            case 'query': model.query(a.after, a.limit); break;
          }
        }
        answered += model.answers;
      }),
      { numRuns: 600 },
    );
    // The check means nothing if the cache never answers.
    expect(answered).to.be.above(500);
  });
});

const clusterAction = fc.oneof(
  { weight: 20, arbitrary: fc.tuple(fc.integer({ min: 0, max: 1 }), action) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 0, max: 1 }), fc.record({ t: fc.constant('loseShard' as const) })) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 0, max: 1 }), fc.record({ t: fc.constant('move' as const) })) },
  { weight: 2, arbitrary: fc.tuple(fc.integer({ min: 0, max: 1 }), fc.record({ t: fc.constant('letGo' as const) })) },
);

describe('TailCache against model logs on two cluster shards', () => {
  it('answers only what a read of each log would have returned, and one shard\'s loss leaves the other cached', () => {
    const answered = [0, 0];
    fc.assert(
      fc.property(fc.array(clusterAction, { minLength: 10, maxLength: 200, size: 'max' }), (actions) => {
        const clock = { now: 1000 };
        const cache = new TailCache({ maxMessages: 4, maxBytes: 1 << 20, totalBytes: 1 << 20, retention: () => RULE, now: () => clock.now });
        const models = [new Model(cache, 's', clock), new Model(cache, 't', clock)];
        for (const m of models) m.subscribe();
        for (const [i, a] of actions) {
          const model = models[i]!;
          switch (a.t) {
            case 'append': model.append(a.n, a.carry, a.ours); break;
            case 'deliver': model.deliverSub(); break;
            case 'issue': model.issueRead(a.after, a.limit); break;
            case 'exec': model.execRead(); break;
            case 'roundTrip': model.roundTrip(a.after, a.limit); break;
            case 'reply': model.replyCmd(); break;
            case 'tick': clock.now += Math.min(a.ms, ...models.map((m) => m.room(a.ms))); break;
            // One shard's connection dropped: only its stream is forgotten.
            case 'drop': case 'loseShard': {
              const other = models[1 - i]!.stream;
              const kept = cache.head(other);
              model.loseShard();
              expect(cache.head(other), 'the other shard\'s stream').to.deep.equal(kept);
              break;
            }
            case 'move': model.move(); break;
            case 'letGo': model.letGo(); break;
            case 'subscribe': model.subscribe(); break;
            case 'query': model.query(a.after, a.limit); break;
          }
        }
        models.forEach((m, k) => (answered[k]! += m.answers));
      }),
      { numRuns: 600 },
    );
    // The check means nothing if the cache never answers. Over random runs each shard's count was
    // 178 or more in 40 runs, and 141 once in a CI run: 150 was too close to that tail.
    expect(answered[0]).to.be.above(100);
    expect(answered[1]).to.be.above(100);
  });
});
