import { get } from '../api.js';
import { CopyButton, Figure, Status, Table, useLoad } from '../components.js';
import { hrefOf, rangeParams } from '../state.js';

interface Activity {
  top: { subjects: { value: string; count: number }[] };
}
interface Generated {
  subject: string;
  subjects: { requests: number; alreadyAllowed: number; firstSeen: string | null; lastSeen: string | null }[];
  objects: { kind: string; metadata: { name: string; namespace?: string } }[];
  yaml: string;
}

/** Least-privilege RBAC from observed use: pick a subject, get the Roles that cover what it did. */
export function Rbac({ params }: { params: URLSearchParams }) {
  const range = rangeParams(params);
  const user = params.get('user') ?? undefined;
  const subjects = useLoad(JSON.stringify(range), () =>
    get<Activity>('/api/v1/reports/activity', { ...range, limit: '25' }),
  );
  const generated = useLoad(JSON.stringify({ range, user }), () =>
    user === undefined ? Promise.resolve(null) : get<Generated>('/api/v1/reports/rbac', { ...range, user }),
  );
  return (
    <>
      <h1>RBAC from observed use</h1>
      <div class="grid2">
        <Status state={subjects}>
          {(a) => (
            <Table
              caption="Most active subjects (click to generate their roles)"
              testId="rbac-subjects"
              columns={['subject', 'requests']}
              rows={a.top.subjects.map((s) => [
                { text: s.value, href: hrefOf('rbac', { ...range, user: s.value }) },
                s.count,
              ])}
            />
          )}
        </Status>
        <Status state={generated}>
          {(g) =>
            g === null ? (
              <section class="card">
                <h2>Roles</h2>
                <p class="muted">
                  Pick a subject: kaudit writes the Roles and bindings that allow exactly what it did.
                </p>
              </section>
            ) : (
              <section class="card" data-testid="rbac-generated">
                <h2>{g.subject}</h2>
                <div class="figures">
                  <Figure label="requests" value={(g.subjects[0]?.requests ?? 0).toLocaleString('en')} />
                  <Figure label="objects" value={g.objects.length} testId="rbac-objects" />
                </div>
                {g.objects.length === 0 ? (
                  <p class="muted">
                    Nothing to generate: discovery and self-review requests are left to the bootstrap roles.
                  </p>
                ) : (
                  <>
                    <pre data-testid="rbac-yaml">{g.yaml}</pre>
                    <CopyButton text={g.yaml} />
                  </>
                )}
              </section>
            )
          }
        </Status>
      </div>
    </>
  );
}
