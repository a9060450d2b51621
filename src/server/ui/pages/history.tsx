import { get } from '../api.js';
import { Status, Table, useLoad } from '../components.js';
import { hrefOf, navigate, rangeParams, withParams } from '../state.js';
import type { HistoryReport } from '../types.js';

export function History({ params }: { params: URLSearchParams }) {
  const object = params.get('object') ?? '';
  const range = rangeParams(params);
  const report = useLoad(`${object}${JSON.stringify(range)}`, () =>
    object === ''
      ? Promise.resolve(undefined)
      : get<HistoryReport>('/api/v1/reports/history', { ...range, object }),
  );
  return (
    <>
      <h1>Object history</h1>
      <form
        class="filters card"
        onSubmit={(e) => {
          e.preventDefault();
          const v = String(new FormData(e.target as HTMLFormElement).get('object') ?? '');
          navigate('history', withParams(params, { object: v }));
        }}
      >
        <label>
          object (RESOURCE/NAMESPACE/NAME)
          <input name="object" value={object} placeholder="configmaps/payments/payments-api" />
        </label>
        <button type="submit">Show</button>
      </form>
      {object !== '' && (
        <Status state={report}>
          {(r) =>
            r === undefined ? null : (
              <Table
                caption={`Changes of ${object}, oldest first`}
                columns={['time', 'verb', 'subresource', 'who', 'from', 'user agent', 'code', 'body']}
                rows={r.changes.map((c) => [
                  { text: c.ts, href: hrefOf('event', { id: c.auditId }) },
                  c.verb,
                  c.subresource,
                  c.username === null ? c.subject : `${c.username} as ${c.subject}`,
                  c.sourceIp,
                  c.userAgent,
                  c.code,
                  c.requestObject === undefined ? null : JSON.stringify(c.requestObject).slice(0, 200),
                ])}
                empty="No change of this object in the window."
              />
            )
          }
        </Status>
      )}
    </>
  );
}
