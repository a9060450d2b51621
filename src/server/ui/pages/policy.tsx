import { useState } from 'preact/hooks';
import { post } from '../api.js';
import { Table } from '../components.js';
import { rangeParams } from '../state.js';

interface Finding {
  severity: string;
  code: string;
  message: string;
  line?: number;
  path?: string;
}
interface Simulation {
  events: number;
  bytes: number;
  rules: { index: number; level: string; matched: number; events: number; bytes: number }[];
  [k: string]: unknown;
}

export function Policy({ params }: { params: URLSearchParams }) {
  const [text, setText] = useState('');
  const [findings, setFindings] = useState<Finding[] | undefined>(undefined);
  const [sim, setSim] = useState<Simulation | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const run = async () => {
    setError(undefined);
    try {
      const lint = await post<{ findings: Finding[] }>('/api/v1/policy/lint', text);
      setFindings(lint.findings);
      if (lint.findings.every((f) => f.severity !== 'error'))
        setSim(await post<Simulation>('/api/v1/policy/simulate', text, rangeParams(params)));
      else setSim(undefined);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <>
      <h1>Audit policy</h1>
      <section class="card">
        <label for="policy-text">Paste an audit Policy (YAML) or load a file</label>
        <textarea
          id="policy-text"
          rows={14}
          value={text}
          onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
        />
        <input
          type="file"
          accept=".yaml,.yml"
          aria-label="policy file"
          onChange={async (e) => {
            const f = (e.target as HTMLInputElement).files?.[0];
            if (f) setText(await f.text());
          }}
        />
        <button type="button" onClick={() => void run()}>
          Lint and simulate
        </button>
      </section>
      {error !== undefined && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {findings !== undefined && (
        <Table
          caption="Lint findings"
          testId="lint-findings"
          columns={['severity', 'line', 'field', 'code', 'message']}
          rows={findings.map((f) => [f.severity, f.line ?? null, f.path ?? null, f.code, f.message])}
          empty="No findings."
        />
      )}
      {sim !== undefined && (
        <Table
          caption="What the policy would keep of the stored events, per rule"
          columns={['rule', 'level', 'events', 'bytes']}
          rows={sim.rules.map((r) => [r.index, r.level, r.events, r.bytes])}
        />
      )}
    </>
  );
}
