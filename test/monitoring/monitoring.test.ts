// Monitoring: the Grafana dashboard and the PrometheusRule query only metrics the webhook exports (src/metrics.ts,
// prom-client's process metrics) or kube-state-metrics; the rules pass `promtool check rules` and the unit tests
// in alerts.test.yaml (`promtool test rules`); every alert has its runbook entry in the README.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { Metrics } from '../../src/metrics.js';
import { goTool } from '../support/go-tools.js';
import { find, HELM, rendered, type K8sObject } from '../chart/helm.js';

const PROMTOOL = goTool('promtool');
const dashboard = JSON.parse(readFileSync('charts/acr-pull-webhook/files/grafana-dashboard.json', 'utf8'));
/** From kube-state-metrics (the Deployment's readiness): not ours, named here so a typo still fails. */
const KUBE_STATE_METRICS = new Set(['kube_deployment_status_replicas_ready']);

/** The metric names a PromQL expression reads: what is left once strings, label matchers, ranges, grouping
 * clauses, functions, keywords and numbers are taken out. */
export function metricNames(expr: string): string[] {
  const rest = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\w+/g, ' ');
  const names = [...rest.matchAll(/\b[A-Za-z_:][A-Za-z0-9_:]*\b(?!\s*\()/g)].map((m) => m[0]);
  const keywords = new Set(['and', 'or', 'unless', 'offset', 'bool', 'e', 'Inf', 'NaN']);
  return [...new Set(names.filter((n) => !keywords.has(n) && !/^\d/.test(n)))];
}

let exported: Set<string>;
beforeAll(async () => {
  const m = new Metrics();
  const json = await m.registry.getMetricsAsJSON();
  // Histograms are read through their _bucket, _sum and _count series. prom-client's typings declare `type` a
  // numeric enum, but getMetricsAsJSON returns the name ('histogram'): compare it as the string it is.
  exported = new Set(json.flatMap((x) => (String(x.type) === 'histogram' ? [`${x.name}_bucket`, `${x.name}_sum`, `${x.name}_count`] : [x.name])));
});

function unknownMetrics(exprs: string[]): string[] {
  const used = exprs.flatMap(metricNames);
  expect(used.length).toBeGreaterThan(0);
  return used.filter((n) => !exported.has(n) && !KUBE_STATE_METRICS.has(n));
}

describe('the Grafana dashboard', () => {
  const exprs: string[] = dashboard.panels.flatMap((p: K8sObject) => p.targets.map((t: K8sObject) => t.expr));

  it('queries only metrics the webhook exports (or kube-state-metrics)', () => {
    expect(exprs.length).toBeGreaterThanOrEqual(10);
    expect(unknownMetrics(exprs)).toEqual([]);
    // The namespace variable is filled from a metric that exists too.
    const variable = dashboard.templating.list.find((v: K8sObject) => v.name === 'namespace');
    expect(unknownMetrics([/label_values\((\w+),/.exec(variable.definition)![1]!])).toEqual([]);
  });

  it('covers the webhook’s own metrics: each is on some panel', () => {
    const used = new Set(exprs.flatMap(metricNames).map((n) => n.replace(/_(bucket|sum|count)$/, '')));
    const ours = [...exported].filter((n) => n.startsWith('acr_webhook_')).map((n) => n.replace(/_(bucket|sum|count)$/, ''));
    expect(ours.filter((n) => !used.has(n))).toEqual([]);
  });

  it('panels have distinct ids and do not overlap on the 24-column grid', () => {
    const panels: { id: number; gridPos: { x: number; y: number; w: number; h: number } }[] = dashboard.panels;
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    for (const [i, a] of panels.entries()) {
      expect(a.gridPos.x + a.gridPos.w, `panel ${a.id}`).toBeLessThanOrEqual(24);
      for (const b of panels.slice(i + 1)) {
        const apart = a.gridPos.x + a.gridPos.w <= b.gridPos.x || b.gridPos.x + b.gridPos.w <= a.gridPos.x || a.gridPos.y + a.gridPos.h <= b.gridPos.y || b.gridPos.y + b.gridPos.h <= a.gridPos.y;
        expect(apart, `panels ${a.id} and ${b.id}`).toBe(true);
      }
    }
  });

  it('the metric-name reader is not fooled by labels, ranges and functions', () => {
    expect(metricNames('histogram_quantile(0.99, sum by (le, api) (rate(acr_webhook_x_bucket{namespace="$namespace", code=~"5.."}[$__rate_interval]))) > 2')).toEqual(['acr_webhook_x_bucket']);
    expect(metricNames('min by (namespace) (a_total{x="y"}) < on (namespace) max by (namespace) (b_seconds) or vector(1)')).toEqual(['a_total', 'b_seconds']);
    expect(unknownMetrics(['rate(acr_webhook_no_such_metric_total[5m])'])).toEqual(['acr_webhook_no_such_metric_total']);
  });
});

describe.runIf(HELM.run)(`the PrometheusRule${HELM.note}`, () => {
  let rules: K8sObject[];
  let groups: K8sObject;
  beforeAll(() => {
    groups = find(rendered({ monitoring: { prometheusRule: { enabled: true } } }), 'PrometheusRule').spec.groups;
    rules = groups.flatMap((g: K8sObject) => g.rules);
  });

  it('alerts on what the issue asks, each with a severity, a summary and a runbook', () => {
    expect(rules.map((r) => r.alert)).toEqual([
      'AcrPullWebhookTokenExpiringSoon',
      'AcrPullWebhookTokenExpired',
      'AcrPullWebhookRefreshFailing',
      'AcrPullWebhookAdmissionErrors',
      'AcrPullWebhookCloudDenials',
      'AcrPullWebhookLatencyHigh',
      'AcrPullWebhookNoReadyReplica',
      'AcrPullWebhookCertificateExpiring',
      'AcrPullWebhookDiscoveryFailing',
      'AcrPullWebhookCredentialHelperFailing',
      'AcrPullWebhookCredentialHelperConfigRefused',
    ]);
    for (const r of rules) {
      expect(['warning', 'critical'], r.alert).toContain(r.labels.severity);
      expect(r.annotations.summary, r.alert).toBeTruthy();
      expect(r.annotations.runbook, r.alert).toBe('README.md, "Alerts and runbooks"');
      // Scoped to the release namespace, so another install's series never trigger it.
      expect(r.expr, r.alert).toContain('namespace="acr-pull-webhook"');
    }
  });

  it('queries only metrics the webhook exports (or kube-state-metrics)', () => {
    expect(unknownMetrics(rules.map((r) => r.expr))).toEqual([]);
  });

  it('every alert has a runbook entry in the README', () => {
    const readme = readFileSync('README.md', 'utf8');
    const section = readme.slice(readme.indexOf('## Alerts and runbooks'));
    expect(section.length).toBeGreaterThan(100);
    for (const r of rules) expect(section, r.alert).toMatch(new RegExp(`^- \\*\\*${r.alert}\\*\\*`, 'm'));
  });

  describe.runIf(PROMTOOL.run)(`with promtool${PROMTOOL.note}`, () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'acr-rules-'));
      writeFileSync(join(dir, 'rules.yaml'), stringify({ groups }));
      copyFileSync('test/monitoring/alerts.test.yaml', join(dir, 'alerts.test.yaml'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const promtool = (...args: string[]) => spawnSync(PROMTOOL.path, args, { encoding: 'utf8', cwd: dir, timeout: 60_000 });

    it('promtool check rules passes', () => {
      const r = promtool('check', 'rules', 'rules.yaml');
      expect(r.stdout + r.stderr).toMatch(/SUCCESS: 11 rules found/);
      expect(r.status).toBe(0);
    });

    it('promtool test rules passes alerts.test.yaml (each alert fires when it should, and not before)', () => {
      const r = promtool('test', 'rules', 'alerts.test.yaml');
      expect(r.stdout + r.stderr).toMatch(/SUCCESS/);
      expect(r.status).toBe(0);
    });

    it('promtool test rules fails when a rule is broken (the tests above can fail)', () => {
      const broken = structuredClone(groups);
      broken[0].rules.find((x: K8sObject) => x.alert === 'AcrPullWebhookNoReadyReplica').expr = 'vector(0) > 1';
      writeFileSync(join(dir, 'rules.yaml'), stringify({ groups: broken }));
      try {
        const r = promtool('test', 'rules', 'alerts.test.yaml');
        expect(r.status).not.toBe(0);
        expect(r.stdout + r.stderr).toMatch(/AcrPullWebhookNoReadyReplica/);
      } finally {
        writeFileSync(join(dir, 'rules.yaml'), stringify({ groups }));
      }
    });
  });
});
