import { describe, expect, it } from 'vitest';
import { eventKey } from './event-key.js';

const id = '7b5bcf9e-4a43-4b1c-9c3d-2f1b7a8e0d11';

/** A v1 event in kube-apiserver's field order, with a body big enough to take the string path. */
function apiserverLine(
  opts: { received?: string; stageAt?: string; body?: object; stage?: string } = {},
): Buffer {
  const received = opts.received ?? '2026-11-26T10:00:00.123456Z';
  const stageAt = opts.stageAt ?? '2026-11-26T10:00:00.200000Z';
  const body = JSON.stringify(opts.body ?? { kind: 'ConfigMap', data: { big: 'x'.repeat(2000) } });
  return Buffer.from(
    `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"${id}","stage":"${opts.stage ?? 'ResponseComplete'}",` +
      `"requestURI":"/api/v1/namespaces/ns/configmaps","verb":"create","user":{"username":"alice"},"sourceIPs":["10.0.0.1"],` +
      `"objectRef":{"resource":"configmaps","namespace":"ns","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":201},` +
      `"requestObject":${body},"requestReceivedTimestamp":"${received}","stageTimestamp":"${stageAt}",` +
      `"annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""}}`,
  );
}

describe('eventKey', () => {
  it('reads auditID, stage and the stage time from kube-apiserver output', () => {
    const key = eventKey(apiserverLine());
    expect(key).toEqual({
      id: `${id}","stage":"ResponseComplete`,
      stageMs: Date.parse('2026-11-26T10:00:00.200Z'),
      mayHaveLatency: false,
    });
    // The ResponseComplete of an hour-long watch: keyed by when it completed, as it arrives.
    const watch = apiserverLine({ received: '2026-11-26T09:00:00Z', stageAt: '2026-11-26T10:00:00Z' });
    expect(eventKey(watch)?.stageMs).toBe(Date.parse('2026-11-26T10:00:00Z'));
  });

  it('falls back to the receive time when there is no stageTimestamp, as the table does', () => {
    const line = apiserverLine().toString().replace(',"stageTimestamp":"2026-11-26T10:00:00.200000Z"', '');
    expect(eventKey(Buffer.from(line))?.stageMs).toBe(Date.parse('2026-11-26T10:00:00.123Z'));
  });

  it('gives the same key for the same event in another field order or size', () => {
    const line = apiserverLine();
    const reordered = JSON.parse(line.toString());
    const { auditID, ...rest } = reordered;
    const other = Buffer.from(JSON.stringify({ ...rest, auditID }));
    expect(eventKey(other)?.id).toBe(eventKey(line)?.id);
    expect(eventKey(other)?.stageMs).toBe(eventKey(line)?.stageMs);
    const small = apiserverLine({ body: {} });
    expect(small.length).toBeLessThan(700);
    expect(eventKey(small)?.id).toBe(eventKey(line)?.id);
    expect(eventKey(small)?.stageMs).toBe(eventKey(line)?.stageMs);
  });

  it('tells stages apart', () => {
    expect(eventKey(apiserverLine({ stage: 'ResponseStarted' }))?.id).not.toBe(eventKey(apiserverLine())?.id);
  });

  it('takes the top-level timestamps, not ones inside a body', () => {
    const body = {
      kind: 'Thing',
      spec: {
        requestReceivedTimestamp: '2001-01-01T00:00:00Z',
        stageTimestamp: '2001-01-01T00:00:00Z',
        pad: 'y'.repeat(1000),
      },
    };
    expect(eventKey(apiserverLine({ body }))?.stageMs).toBe(Date.parse('2026-11-26T10:00:00.200Z'));
  });

  it('reads every timestamp form to the millisecond', () => {
    const at = (stageAt: string) => eventKey(apiserverLine({ stageAt }))?.stageMs;
    expect(at('2026-11-26T10:00:00Z')).toBe(Date.parse('2026-11-26T10:00:00Z'));
    expect(at('2026-11-26T10:00:00.5Z')).toBe(Date.parse('2026-11-26T10:00:00.500Z'));
    expect(at('2026-11-26T10:00:00.999999999Z')).toBe(Date.parse('2026-11-26T10:00:00.999Z'));
    expect(at('2026-11-26T12:00:00.250+02:00')).toBe(Date.parse('2026-11-26T10:00:00.250Z'));
    // No zone: local time to Date.parse, UTC to the store's SQL; no key, so the table decides.
    expect(at('2026-11-26T10:00:00')).toBeUndefined();
  });

  it('says no latency annotations only when the annotations, last on the line, have none', () => {
    const line = apiserverLine().toString();
    const withLatency = line.replace(
      '"authorization.k8s.io/reason":""',
      '"apiserver.latency.k8s.io/etcd":"1.5s"',
    );
    expect(eventKey(Buffer.from(withLatency))?.mayHaveLatency).toBe(true);
    const none = line.replace(/,"annotations":\{.*\}\}$/, '}');
    expect(none.endsWith('"stageTimestamp":"2026-11-26T10:00:00.200000Z"}')).toBe(true);
    expect(eventKey(Buffer.from(none))?.mayHaveLatency).toBe(false);
    // Another field order: the annotations are not where the tail is read, so it cannot say.
    const event = JSON.parse(withLatency);
    const { annotations, ...rest } = event;
    const reordered = Buffer.from(JSON.stringify({ annotations, ...rest }));
    expect(eventKey(reordered)?.mayHaveLatency).toBe(true);
  });

  it('is null when a field is missing, escaped or not a time', () => {
    expect(
      eventKey(Buffer.from('{"stage":"ResponseComplete","requestReceivedTimestamp":"2026-11-26T10:00:00Z"}')),
    ).toBeNull();
    expect(
      eventKey(
        Buffer.from(
          '{"auditID":"a\\"b","stage":"ResponseComplete","requestReceivedTimestamp":"2026-11-26T10:00:00Z"}',
        ),
      ),
    ).toBeNull();
    expect(eventKey(apiserverLine({ received: 'yesterday' }))).toBeNull();
    expect(eventKey(apiserverLine({ stageAt: 'today' }))).toBeNull();
    expect(eventKey(Buffer.from('{"auditID":"abc'))).toBeNull();
  });
});
