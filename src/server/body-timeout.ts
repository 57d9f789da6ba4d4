// Cuts off request bodies that stall. Node has no idle timeout for a request body (server.requestTimeout is a
// deadline for the whole request, which a large blob upload may rightly pass), so a client that sends part of
// a body and then nothing would hold its connection, and an upload session, for as long as it likes.
import type { IncomingMessage } from 'node:http';
import { RegistryError } from '../oci/errors.js';

/**
 * Closes the connection of `req` once its body has been idle for `ms` (0: never). Idle means the client sent
 * nothing: while the server itself is behind (the body's buffer is full because a handler or the disk is slow
 * to take it), the wait goes on. Once the body is complete, the timer is off again.
 */
export function limitBodyIdle(req: IncomingMessage, ms: number): void {
  if (ms <= 0 || !hasBody(req)) return;
  const socket = req.socket;
  const done = () => {
    socket.setTimeout(0);
    req.off('timeout', onTimeout);
  };
  const onTimeout = () => {
    if (req.complete) return done();
    if (req.readableLength >= req.readableHighWaterMark) {
      socket.setTimeout(ms);
      return;
    }
    // No response can be sent mid-body that a client stuck writing would read: the connection is closed. The
    // handler reading the body sees this error (a client mistake, not a server failure for the log); an upload
    // drops the unfinished chunk and stays where its last complete one left it.
    req.destroy(new RegistryError('BODY_STALLED', `the request body sent nothing for ${ms / 1000} s`));
  };
  req.setTimeout(ms, onTimeout);
  req.once('end', done);
  req.once('close', done);
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}
