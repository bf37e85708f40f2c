/**
 * The browser client's code -> status table (STATUS_OF in static/pollgate.js) gives a status to
 * errors that arrive without one (JSONP and XDomainRequest answers are 200, WebSocket error frames
 * have none), and its retry decision reads that status. It must hold exactly the codes the server
 * sends, each with the server's status: the list is derived from lib/errors.ts, not written here.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import { serverStatuses } from '../rules/error-classes.js';
import { CLIENT_PATH } from '../support/node-client.js';

/** The STATUS_OF object literal of the client's source, evaluated. */
function clientStatuses(): Record<string, number> {
  const m = /\bvar STATUS_OF = (\{[^}]*\});/.exec(readFileSync(CLIENT_PATH, 'utf8'));
  if (!m) throw new Error('static/pollgate.js has no `var STATUS_OF = {...};`');
  return { ...(vm.runInNewContext(`(${m[1]})`) as Record<string, number>) };
}

describe('static/pollgate.js STATUS_OF', () => {
  it('gives every code the server sends (each exported GatewayError, and internal) the server\'s status, and knows no other code', () => {
    expect(clientStatuses()).to.deep.equal(serverStatuses());
  });
});
