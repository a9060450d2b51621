/**
 * The dashboard in a real headless Chromium (Debian's, driven by playwright-core) over `kaudit serve`
 * of a store filled from the simulator with every scenario: each page opens without console errors,
 * loads nothing from anywhere but 127.0.0.1, and shows the figures the API returns.
 * With KAUDIT_SCREENSHOTS=DIR each page is also saved there (`npm run screenshots` refreshes
 * docs/screenshots/).
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, spawnCli } from '../helpers/cli.js';

const CHROMIUM = process.env.KAUDIT_CHROMIUM ?? '/usr/bin/chromium';
let dir: string;
let serve: ChildProcess;
let base: string;
let browser: Browser;
const shots = process.env.KAUDIT_SCREENSHOTS;

async function api<T>(path: string): Promise<T> {
  const res = await fetch(`${base}${path}`);
  expect(res.status).toBe(200);
  return (await res.json()) as T;
}

/** A page with guards: every request must stay on 127.0.0.1, and the console must stay clean. */
async function open(hash: string): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    const host = new URL(r.url()).hostname;
    if (host !== '127.0.0.1') problems.push(`request left 127.0.0.1: ${r.url()}`);
  });
  await page.goto(`${base}/${hash}`);
  return { page, problems };
}

async function done(page: Page, name: string, problems: string[]): Promise<void> {
  if (shots !== undefined) {
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: false });
  }
  await page.close();
  expect(problems).toEqual([]);
}

describe.runIf(existsSync(CHROMIUM) || process.env.CI !== undefined)('dashboard in Chromium', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kaudit-dashboard-'));
    const log = join(dir, 'audit.log');
    const sim = await runCli([
      'simulate',
      '--out',
      log,
      '--count',
      '30000',
      '--rate',
      '15',
      '--seed',
      '11',
      '--start',
      '2026-01-15T09:00:00Z',
    ]);
    expect(sim.code).toBe(0);
    const ing = await runCli([
      'ingest',
      '--data',
      join(dir, 'data'),
      '--cluster',
      'demo',
      '--no-progress',
      log,
    ]);
    expect(ing.code, ing.stderr).toBe(0);
    // The alerts of the attack scenario, recorded as the agent would have.
    const det = await runCli(['detect', '--data', join(dir, 'data'), '--save']);
    expect(det.code, det.stderr).toBe(0);
    serve = spawnCli(['serve', '--data', join(dir, 'data'), '--listen', '127.0.0.1:0'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    base = await new Promise<string>((resolve, reject) => {
      let text = '';
      serve.stderr?.on('data', (b: Buffer) => {
        text += b.toString();
        const m = /at (http:\/\/127\.0\.0\.1:\d+)\//.exec(text);
        if (m?.[1] !== undefined) resolve(m[1]);
      });
      serve.on('exit', (code) => reject(new Error(`kaudit serve exited ${code}: ${text}`)));
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    serve?.kill('SIGTERM');
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('overview shows the denial count and the top subject the API returns', async () => {
    const denied = await api<{ count: number }>('/api/v1/count?denied=true');
    const activity = await api<{ top: { subjects: { value: string; count: number }[] } }>(
      '/api/v1/reports/activity',
    );
    const { page, problems } = await open('#/overview');
    await page.getByTestId('denied-count').filter({ hasText: /\d/ }).waitFor();
    expect(await page.getByTestId('denied-count').innerText()).toBe(denied.count.toLocaleString('en'));
    const firstSubject = page.getByTestId('top-subjects').locator('tbody tr').first().locator('td').first();
    expect(await firstSubject.innerText()).toBe(activity.top.subjects[0]?.value);
    await done(page, 'overview', problems);
  });

  it('latency shows the p99 of list pods the API returns', async () => {
    const r = await api<{
      byVerbResource: { verb: string; resource: string | null; subresource: string | null; p99Ms: number }[];
    }>('/api/v1/reports/latency?limit=200');
    const listPods = r.byVerbResource.find(
      (x) => x.verb === 'list' && x.resource === 'pods' && x.subresource === null,
    );
    expect(listPods).toBeDefined();
    const { page, problems } = await open('#/latency?limit=200');
    const table = page.getByTestId('latency-by-verb-resource');
    await table.waitFor();
    const row = table
      .locator('tbody tr')
      .filter({ has: page.locator('td:nth-child(1)', { hasText: /^list$/ }) })
      .filter({
        has: page.locator('td:nth-child(2)', { hasText: /^pods$/ }),
      });
    if ((await row.count()) > 0) {
      const p99 = await row.first().locator('td').nth(5).innerText();
      expect(Number(p99.replace(/,/g, ''))).toBeCloseTo(Math.round((listPods?.p99Ms ?? 0) * 10) / 10, 1);
    }
    await done(page, 'latency', problems);
  });

  it('explore lists events and opens one as JSON', async () => {
    const { page, problems } = await open('#/explore?verb=delete');
    const rows = page.getByTestId('events').locator('tbody tr');
    await rows.first().waitFor();
    await rows.first().click();
    const json = page.getByTestId('event-json').first();
    await json.waitFor();
    const event = JSON.parse(await json.innerText()) as { verb: string; auditID: string };
    expect(event.verb).toBe('delete');
    expect(page.url()).toContain(`#/event?id=${event.auditID}`);
    await page.goBack();
    await rows.first().waitFor();
    await done(page, 'explore', problems);
  });

  it('policy page lints a pasted policy', async () => {
    const { page, problems } = await open('#/policy');
    await page
      .locator('#policy-text')
      .fill('apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  verbs: [gets]\n');
    await page.getByRole('button', { name: 'Lint and simulate' }).click();
    const findings = page.getByTestId('lint-findings');
    await findings.waitFor();
    expect(await findings.innerText()).toContain('gets');
    await done(page, 'policy', problems);
  });

  it('security shows the alert counts the API returns, and an alert opens its event', async () => {
    const { alerts } = await api<{ alerts: { auditID: string; rule: { severity: string } }[] }>(
      '/api/v1/alerts',
    );
    const high = alerts.filter((a) => a.rule.severity === 'high').length;
    expect(high).toBeGreaterThan(0);
    const { page, problems } = await open('#/security');
    const figure = page.getByTestId('alerts-high');
    await figure.filter({ hasText: /\d/ }).waitFor();
    expect(await figure.innerText()).toContain(String(high));
    const rows = page.getByTestId('alerts').locator('tbody tr');
    await rows.first().waitFor();
    await rows.first().click();
    const json = page.getByTestId('event-json').first();
    await json.waitFor();
    const event = JSON.parse(await json.innerText()) as { auditID: string };
    expect(event.auditID).toBe(alerts[0]?.auditID);
    await page.goBack();
    await rows.first().waitFor();
    await done(page, 'security', problems);
  });

  it('RBAC generates the roles of a subject picked from the list, as the API does', async () => {
    const { page, problems } = await open('#/rbac');
    const first = page.getByTestId('rbac-subjects').locator('tbody tr').first().locator('a');
    await first.waitFor();
    const user = await first.innerText();
    await first.click();
    const generated = await api<{ yaml: string; objects: unknown[] }>(
      `/api/v1/reports/rbac?user=${encodeURIComponent(user)}`,
    );
    await page.getByTestId('rbac-generated').waitFor();
    expect(await page.getByTestId('rbac-objects').innerText()).toContain(String(generated.objects.length));
    const lines = (t: string) =>
      t
        .split('\n')
        .map((l) => l.trimEnd())
        .filter((l) => l !== '');
    if (generated.objects.length > 0)
      expect(lines(await page.getByTestId('rbac-yaml').innerText())).toEqual(lines(generated.yaml));
    expect(page.url()).toContain(`user=${encodeURIComponent(user)}`);
    await done(page, 'rbac', problems);
  });

  it('history shows who changed an object', async () => {
    const { page, problems } = await open('#/history?object=namespaces/feature-x-preview');
    await page.getByText('Changes of namespaces/feature-x-preview').waitFor();
    await done(page, 'history', problems);
  });
});
