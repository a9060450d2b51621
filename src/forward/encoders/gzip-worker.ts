/** The forwarders' compression thread (encoder.ts): gzip at level 1, off the agent's main thread. */
import { parentPort } from 'node:worker_threads';
import { gzipSync } from 'node:zlib';

export interface GzipRequest {
  id: number;
  data: string | Uint8Array;
}

parentPort?.on('message', (m: GzipRequest) => {
  try {
    const body = gzipSync(m.data, { level: 1 });
    // Its own ArrayBuffer (gzipSync may hand back a slice of a shared pool): moved, not copied.
    const out = new Uint8Array(body.length);
    out.set(body);
    parentPort?.postMessage({ id: m.id, body: out }, [out.buffer]);
  } catch (err) {
    parentPort?.postMessage({ id: m.id, error: err instanceof Error ? err.message : String(err) });
  }
});
