/**
 * Requests Node's HTTP parser refuses before any route sees them (headers over maxHeaderSize,
 * chunk extensions over Node's cap, a malformed request, one not received in time): a server
 * attached with `clientErrors` (the standalone server's is) answers them with the gateway's JSON
 * error, where Node's own answer is a bare status line.
 */
import type { Duplex } from 'node:stream';
import { BadRequestError, HeadersTooLargeError, PayloadTooLargeError, RequestTimeoutError, toWire, type GatewayError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { refuseOnSocket } from './errors.js';

/** The request a connection is answering (Node's own field): its head may already be on the wire. */
type ServerSocket = Duplex & { _httpMessage?: { headersSent?: boolean } };

/**
 * The 'clientError' listener of attach(server, { clientErrors: true }). As Node's own: nothing is
 * written once an answer on the connection has begun (bytes in the middle of it would corrupt
 * it), and a reset is just closed.
 */
export function answerClientError(maxHeaderBytes: number, metrics?: Metrics): (err: NodeJS.ErrnoException, socket: Duplex) => void {
  return (err, socket) => {
    const inFlight = (socket as ServerSocket)._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const wire = toWire(parserRefusal(err, maxHeaderBytes));
    // A request already inside the pipeline (its body was being read) is refused and counted
    // there too, as a body that did not arrive: counted once.
    if (!inFlight) metrics?.refused(wire);
    refuseOnSocket(socket, wire);
  };
}

/** The typed error for what Node's parser refused. */
function parserRefusal(err: NodeJS.ErrnoException, maxHeaderBytes: number): GatewayError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new HeadersTooLargeError(
        `the request line and headers are over ${maxHeaderBytes} bytes (a poll of many streams can be a POST /poll with its parameters in a JSON body)`,
      );
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new PayloadTooLargeError('the chunk extensions of the request body are over the limit');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new RequestTimeoutError('the request was not received in time');
    default:
      return new BadRequestError('malformed request');
  }
}
