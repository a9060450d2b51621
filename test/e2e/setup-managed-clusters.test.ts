import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, kaudit, tempDir } from '../fixtures/agent/harness.js';
import { BIN, FIXTURES, THIRD_PARTY } from '../helpers/cli.js';

// The steps of docs/managed-clusters.md after the provider's CLI has downloaded the export: the
// files laid out as each export writes them, loaded with the commands the document gives.

interface Summary {
  events: number;
  stored: number;
  malformed: number;
}

describe('docs/managed-clusters.md: kaudit ingest of each provider export', () => {
  const dir = tempDir('managed');
  beforeAll(buildOnce);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const ingest = async (data: string, ...args: string[]): Promise<Summary> => {
    const r = await kaudit(['ingest', '--json', '--no-progress', '--data', join(dir, data), ...args]);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Summary;
  };
  const sourceFormats = async (data: string): Promise<Record<string, unknown>[]> => {
    const r = await kaudit([
      'query',
      '--json',
      '--data',
      join(dir, data),
      `SELECT cluster, json_extract_string(raw, '$.user.username') AS user_name, json_extract_string(raw, '$.verb') AS verb,
        json_extract_string(raw, '$.annotations."kaudit.io/source-format"') AS format FROM events ORDER BY 2`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  };

  const gkeLines = readFileSync(join(FIXTURES, 'gke-cloud-audit-entries.jsonl'), 'utf8').trim().split('\n');

  it('GKE: a Cloud Storage sink directory of hourly JSON-lines files', async () => {
    const hour = join(dir, 'gke-export/cloudaudit.googleapis.com/activity/2026/03/01');
    mkdirSync(hour, { recursive: true });
    writeFileSync(join(hour, '12:00:00_12:59:59_S0.json'), `${gkeLines.join('\n')}\n`);
    const s = await ingest('gke', '--cluster', 'my-cluster', join(dir, 'gke-export'));
    expect(s).toMatchObject({ events: gkeLines.length, stored: gkeLines.length, malformed: 0 });
    const rows = await sourceFormats('gke');
    expect(rows[0]).toMatchObject({ cluster: 'my-cluster', user_name: 'bob', verb: 'get', format: 'gke' });
  });

  it('GKE: the JSON array gcloud logging read --format=json prints', async () => {
    writeFileSync(
      join(dir, 'gke-audit.json'),
      JSON.stringify(
        gkeLines.map((l) => JSON.parse(l)),
        null,
        2,
      ),
    );
    const s = await ingest('gke-read', '--cluster', 'my-cluster', join(dir, 'gke-audit.json'));
    expect(s).toMatchObject({ stored: gkeLines.length, malformed: 0 });
  });

  const aks = JSON.parse(readFileSync(join(FIXTURES, 'aks-diagnostic-records.json'), 'utf8')) as {
    records: unknown[];
  };

  it('AKS: storage account blobs, one record per line', async () => {
    const blobDir = join(
      dir,
      'aks-export/resourceId=/SUBSCRIPTIONS/0000/RESOURCEGROUPS/MY-RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/MY-CLUSTER/y=2026/m=03/d=01/h=12/m=00',
    );
    mkdirSync(blobDir, { recursive: true });
    writeFileSync(join(blobDir, 'PT1H.json'), `${aks.records.map((r) => JSON.stringify(r)).join('\n')}\n`);
    const s = await ingest('aks', '--cluster', 'my-cluster', join(dir, 'aks-export'));
    expect(s).toMatchObject({ events: aks.records.length, stored: aks.records.length, malformed: 0 });
    const rows = await sourceFormats('aks');
    expect(rows.map((r) => r.format)).toEqual(aks.records.map(() => 'aks'));
  });

  it('AKS: an Event Hubs message body ({"records": [...]})', async () => {
    const s = await ingest(
      'aks-hub',
      '--cluster',
      'my-cluster',
      join(FIXTURES, 'aks-diagnostic-records.json'),
    );
    expect(s).toMatchObject({ stored: aks.records.length, malformed: 0 });
  });

  it("EKS: CloudWatch's S3 export (gzipped `<timestamp> <message>` lines) through zcat | cut | kaudit ingest -", () => {
    const events = readFileSync(join(THIRD_PARTY, 'samples/audit2rbac-demo.log'), 'utf8').trim().split('\n');
    const exportDir = join(dir, 'eks-export/0a1b2c3d/kube-apiserver-audit-0123456789abcdef');
    mkdirSync(exportDir, { recursive: true });
    const lines = events.map((m, i) => `2026-03-01T12:00:${String(i % 60).padStart(2, '0')}.000Z ${m}`);
    writeFileSync(join(exportDir, '000000.gz'), gzipSync(`${lines.join('\n')}\n`));
    // The document's pipeline, with `kaudit` being this build.
    const out = execFileSync(
      'bash',
      [
        '-c',
        `set -o pipefail; find eks-export -name '*.gz' -exec zcat {} + | cut -d' ' -f2- | "${process.execPath}" "${BIN}" ingest --json --no-progress --data eks --cluster my-cluster -`,
      ],
      { cwd: dir, encoding: 'utf8' },
    );
    expect(JSON.parse(out)).toMatchObject({ events: events.length, stored: events.length, malformed: 0 });
  });
});
