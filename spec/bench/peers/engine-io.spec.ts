import { expect } from 'chai';
import { parseEnginePayload, parseSocketEvent } from '../../../bench/peers/engine-io.js';

describe('bench/peers/engine-io', function () {
  describe('parseEnginePayload', function () {
    it('splits a polling body into packets at each record separator', function () {
      const body = '40{"sid":"a"}\x1e42["message",{"stream":"s","data":{"n":0,"t":1}}]\x1e2';
      expect(parseEnginePayload(body)).to.deep.equal([
        { type: 4, data: '0{"sid":"a"}' },
        { type: 4, data: '2["message",{"stream":"s","data":{"n":0,"t":1}}]' },
        { type: 2, data: '' },
      ]);
    });

    it('reads the open packet of a handshake, and nothing from an empty body', function () {
      expect(parseEnginePayload('0{"sid":"x","pingInterval":25000}')).to.deep.equal([{ type: 0, data: '{"sid":"x","pingInterval":25000}' }]);
      expect(parseEnginePayload('')).to.deep.equal([]);
    });
  });

  describe('parseSocketEvent', function () {
    it('returns the name and arguments of an event on the main namespace', function () {
      expect(parseSocketEvent('2["message",{"n":3},"x"]')).to.deep.equal({ name: 'message', args: [{ n: 3 }, 'x'] });
    });

    it('returns undefined for any other Socket.IO packet (connect ack, connect error)', function () {
      expect(parseSocketEvent('0{"sid":"a"}')).to.equal(undefined);
      expect(parseSocketEvent('4{"message":"no"}')).to.equal(undefined);
    });
  });
});
