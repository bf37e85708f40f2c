/**
 * A long-poll session's kick (POST /disconnect) reaches the poll parked in it, and only while it
 * is parked. The turn keeps the parked poll itself, not a closure made for every poll.
 */
import { expect } from 'chai';
import { ForbiddenError, type GatewayError } from '../../lib/errors.js';
import { Sessions } from '../../lib/sessions.js';
import { PollSessions, type Kickable } from '../../lib/transports/poll-sessions.js';

describe('PollSessions', function () {
  let sessions: Sessions;
  let polls: PollSessions;
  const kicked: GatewayError[] = [];
  const poll: Kickable = { kicked: (err) => void kicked.push(err), superseded: () => {} };

  beforeEach(function () {
    kicked.length = 0;
    sessions = new Sessions();
    polls = new PollSessions(sessions, 60_000);
  });
  afterEach(function () {
    polls.closeAll();
  });

  it("answers the parked poll of a kicked session through its kicked(), and keeps that poll, not a closure", function () {
    const turn = polls.begin('alice', 'c1', ['room:a']);
    turn.parked(poll);
    expect(Object.values(turn)).to.include(poll);
    const err = new ForbiddenError('disconnected');
    expect(sessions.kick('alice', Date.now() + 1, err)).to.equal(1);
    expect(kicked).to.deep.equal([err]);
  });

  it('kicks no poll once its turn ended', function () {
    const turn = polls.begin('bob', 'c1', ['room:a']);
    turn.end();
    turn.parked(poll);
    sessions.kick('bob', Date.now() + 1, new ForbiddenError('disconnected'));
    expect(kicked).to.deep.equal([]);
  });
});
