/**
 * Faye 1.4 as the bench's peer: Bayeux at /bayeux (the load generator uses `long-polling` only),
 * the in-memory engine. Backends publish the Bayeux way: POST /bayeux with a publish message
 * `{channel, data, ext: {key}}` and no clientId (Faye's server accepts a publish without a
 * client); an incoming extension rejects any publish whose ext.key is not the API key, which is
 * how Faye deployments authorise publishers, and strips the key. Channels are `/s/<stream>`.
 * GET /stats and /healthz as bench/peers/peer-http.ts; PORT, HOST and POLLGATE_API_KEYS from the environment.
 */
import { createServer } from 'node:http';
import faye from 'faye';
import { answerJson, countHeldPolls, exitOnTerm, listenAddress, serveAdmin } from './peer-http.js';

const apiKey = process.env.POLLGATE_API_KEYS ?? '';

const server = createServer((req, res) => {
  if (serveAdmin(req, res, heldPolls)) return;
  answerJson(res, 404, { error: 'not found' });
});

// timeout: how long a /meta/connect is held (s), 25 like the bench's pollgate polls.
const bayeux = new faye.NodeAdapter({ mount: '/bayeux', timeout: 25 });
bayeux.addExtension({
  incoming(message, callback) {
    const isPublish = !message.channel.startsWith('/meta/');
    if (isPublish && message.ext?.key !== apiKey) message.error = '403::publishing needs the API key';
    // Faye passes a publish's ext on to every subscriber: the key must not go with it.
    if (isPublish) delete message.ext;
    callback(message);
  },
});
bayeux.attach(server);
const heldPolls = countHeldPolls(server, (req) => req.method === 'POST' && (req.url ?? '').startsWith('/bayeux'));

const { port, host } = listenAddress();
server.listen(port, host);
exitOnTerm(server);
