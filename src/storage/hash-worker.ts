// The worker thread behind UploadHasher (upload-hasher.ts): keeps one running sha256 per upload session and
// hashes the batches the main thread sends it, in the order sent, handing each batch's memory back.
import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

export type HashRequest =
  | { op: 'update'; session: string; buf: ArrayBuffer; length: number }
  | { op: 'digest'; session: string; seq: number }
  | { op: 'drop'; session: string };

export type HashReply = { op: 'updated'; session: string; buf: ArrayBuffer; length: number } | { op: 'digest'; seq: number; hex: string };

const port = parentPort!;
const running = new Map<string, Hash>();

port.on('message', (m: HashRequest) => {
  switch (m.op) {
    case 'update': {
      let hash = running.get(m.session);
      if (!hash) running.set(m.session, (hash = createHash('sha256')));
      hash.update(new Uint8Array(m.buf, 0, m.length));
      port.postMessage({ op: 'updated', session: m.session, buf: m.buf, length: m.length } satisfies HashReply, [m.buf]);
      return;
    }
    case 'digest': {
      // copy(): the session may yet continue (a commit that fails after hashing leaves the upload open).
      const hex = (running.get(m.session) ?? createHash('sha256')).copy().digest('hex');
      port.postMessage({ op: 'digest', seq: m.seq, hex } satisfies HashReply);
      return;
    }
    case 'drop':
      running.delete(m.session);
      return;
  }
});
