import { expect } from 'chai';
import { areaOf } from '../../bench/profile.js';
import { layerOf } from '../../bench/peers/side-by-side.js';

describe('bench/profile areaOf', function () {
  it("names this build's own files by their path in it", function () {
    const root = new URL('../../', import.meta.url).href;
    expect(areaOf(`${root}lib/routes/poll.js`, 'poll')).to.equal('lib/routes/poll');
    expect(areaOf(`${root}bench/peers/socketio-server.js`, 'send')).to.equal('bench/peers/socketio-server');
  });

  it('names a build copied to another folder the same way (side-by-side runs of two builds)', function () {
    const copy = 'file:///tmp/sb/dist-before/';
    expect(areaOf(`${copy}lib/transports/long-poll.js`, 'onRead', copy)).to.equal('lib/transports/long-poll');
    expect(layerOf(areaOf(`${copy}lib/transports/long-poll.js`, 'onRead', copy))).to.equal('own code');
    expect(layerOf(areaOf(`${copy}bench/peers/socketio-server.js`, 'send', copy))).to.equal('own code');
  });

  it('names dependencies, Node and the GC as before', function () {
    expect(areaOf('file:///x/node_modules/koa-router/lib/router.js', 'dispatch')).to.equal('koa-router');
    expect(areaOf('file:///x/node_modules/@socket.io/redis-adapter/dist/index.js', 'f')).to.equal('@socket.io/redis-adapter');
    expect(areaOf('node:_http_outgoing', 'end')).to.equal('node:_http_outgoing');
    expect(layerOf(areaOf('', '(garbage collector)'))).to.equal('GC');
    expect(layerOf(areaOf('file:///x/node_modules/koa/lib/application.js', 'respond'))).to.equal('framework');
  });
});
