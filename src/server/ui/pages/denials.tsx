import { get } from '../api.js';
import { CopyButton, Figure, Status, Table, useLoad } from '../components.js';
import { hrefOf, rangeParams } from '../state.js';

interface DenialGroup {
  class: string;
  admission?: { kind: string; name?: string };
  subject: string;
  verb: string;
  resource: string;
  subresource: string;
  namespace: string;
  nonResourceURL: string;
  count: number;
  lastSeen: string;
  exampleAuditID: string;
  message: string;
}
interface DenialSubject {
  subject: string;
  denied: number;
  succeeded: number;
  suspicious: string[];
  fixYaml: string | null;
}
interface DenialsView {
  denied: number;
  byClass: Record<string, number>;
  groups: DenialGroup[];
  subjects: DenialSubject[];
}

export function Denials({ params }: { params: URLSearchParams }) {
  const range = rangeParams(params);
  const report = useLoad(JSON.stringify(range), () => get<DenialsView>('/api/v1/reports/denials', range));
  return (
    <>
      <h1>Denials</h1>
      <Status state={report}>
        {(r) => (
          <>
            <div class="figures">
              <Figure label="denied requests" value={r.denied.toLocaleString('en')} testId="denials-total" />
              {Object.entries(r.byClass).map(([k, v]) => (
                <Figure label={k} value={v.toLocaleString('en')} />
              ))}
            </div>
            <Table
              caption="Denied requests, grouped"
              testId="denial-groups"
              columns={['class', 'subject', 'verb', 'resource', 'namespace', 'count', 'last seen', 'message']}
              rows={r.groups.map((g) => [
                g.admission === undefined ? g.class : `${g.class} (${g.admission.name ?? g.admission.kind})`,
                g.subject,
                g.verb,
                g.resource === ''
                  ? g.nonResourceURL
                  : g.subresource === ''
                    ? g.resource
                    : `${g.resource}/${g.subresource}`,
                g.namespace === '' ? null : g.namespace,
                g.count,
                { text: g.lastSeen, href: hrefOf('event', { id: g.exampleAuditID }) },
                g.message,
              ])}
              empty="Nothing was denied in this window."
            />
            {r.subjects
              .filter((s) => s.fixYaml !== null || s.suspicious.length > 0)
              .map((s) => (
                <section class="card">
                  <h2>
                    {s.subject}: {s.denied} denied, {s.succeeded} succeeded
                  </h2>
                  {s.suspicious.length > 0 ? (
                    <p class="error">
                      Looks like probing, not a missing permission: {s.suspicious.join('; ')}. No fix
                      proposed.
                    </p>
                  ) : (
                    <>
                      <p>The smallest RBAC change that allows exactly the denied requests:</p>
                      <pre>{s.fixYaml}</pre>
                      <CopyButton text={s.fixYaml ?? ''} />
                    </>
                  )}
                </section>
              ))}
          </>
        )}
      </Status>
    </>
  );
}
