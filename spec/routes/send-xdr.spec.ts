import { expect } from 'chai';
import request from 'supertest';
import { startGateway, type TestGateway } from '../support/gateway.js';

describe('sendRoute with transport=xdr', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway();
  });
  after(async () => {
    await gw.shutdown();
  });

  it('answers errors with 200 and the error body, since XDomainRequest cannot read other statuses', async () => {
    const res = await request(gw.url).post('/send?transport=xdr').set('Content-Type', 'text/plain').send('{"stream":"room:x","data":1}');
    expect(res.status).to.equal(200);
    expect(JSON.parse(res.text).error.code).to.equal('unauthorized');
  });

  it('accepts a text/plain body with the token in it', async () => {
    const token = await gw.token({ sub: 'u', streams: ['room:*'], pub: ['room:*'] });
    const res = await request(gw.url)
      .post('/send?transport=xdr')
      .set('Content-Type', 'text/plain')
      .send(JSON.stringify({ stream: 'room:x', data: 'hi', id: 'abc', token }));
    expect(res.status).to.equal(200);
    expect(JSON.parse(res.text).results[0]).to.include({ stream: 'room:x', id: 'abc' });
  });

  it('keeps real statuses without transport=xdr', async () => {
    const res = await request(gw.url).post('/send').set('Content-Type', 'application/json').send('{"stream":"room:x","data":1}');
    expect(res.status).to.equal(401);
  });
});
