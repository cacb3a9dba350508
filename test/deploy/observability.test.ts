// The Grafana dashboard and the alert rules: required panels, sane layout, and only metrics and labels the router exports.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { chartDir, only, render, routerMetrics, scrapeLabels, type Manifest, type PrometheusRuleEntry } from './chart.js';

interface Target { expr: string; legendFormat?: string; datasource?: { uid?: string } }
interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: { type?: string; uid?: string };
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: Target[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: unknown }[] };
  annotations: { list: { expr?: string }[] };
}

const dashboardPath = join(chartDir, 'dashboards/switchyard.json');
const dashboardText = readFileSync(dashboardPath, 'utf8');
const dashboard = JSON.parse(dashboardText) as Dashboard;
const panels = dashboard.panels.filter((p) => p.type !== 'row');

/** Metric names a PromQL expression reads, with histogram series suffixes mapped back to the histogram. */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\bswitchyard_[a-z0-9_]+/g)].map((m) => m[0]);
}

function baseMetric(name: string): string | undefined {
  if (routerMetrics[name] !== undefined) return name;
  const histogram = /^(.*)_(bucket|sum|count)$/.exec(name)?.[1];
  return histogram !== undefined && routerMetrics[histogram]?.histogram === true ? histogram : undefined;
}

/** Checks one expression: known metrics only, and every label it matches or groups by exists on what it reads. */
function checkExpr(expr: string, where: string): void {
  const metrics = metricsIn(expr);
  expect(metrics.length, `${where}: reads no switchyard metric`).toBeGreaterThan(0);
  const known = new Set<string>([...scrapeLabels]);
  for (const name of metrics) {
    const base = baseMetric(name);
    expect(base, `${where}: ${name} is not a router metric`).toBeDefined();
    for (const label of routerMetrics[base ?? '']?.labels ?? []) known.add(label);
    if (name.endsWith('_bucket')) known.add('le');
  }
  for (const [, matchers] of expr.matchAll(/switchyard_[a-z0-9_]+\{([^}]*)\}/g)) {
    for (const [, label] of (matchers ?? '').matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)) {
      expect(known.has(label ?? ''), `${where}: label ${label} in a matcher`).toBe(true);
    }
  }
  for (const [, labels] of expr.matchAll(/\b(?:by|on|ignoring)\s*\(([^)]*)\)/g)) {
    for (const label of (labels ?? '').split(',').map((l) => l.trim()).filter((l) => l !== '')) {
      expect(known.has(label), `${where}: label ${label} in by/on()`).toBe(true);
    }
  }
  // A cheap syntax guard in the absence of promtool: brackets balance.
  for (const [open, close] of [['(', ')'], ['{', '}'], ['[', ']']] as const) {
    expect(expr.split(open).length, `${where}: ${open}${close} balance`).toBe(expr.split(close).length);
  }
}

describe('Grafana dashboard (dashboards/switchyard.json)', () => {
  it('has a stable uid and title and unique panel ids', () => {
    expect(dashboard.uid).toBe('switchyard-router');
    expect(dashboard.title).toBe('Switchyard');
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it.each([
    ['traffic share per variant', /^traffic share per variant$/i],
    ['error rate per variant', /^error rate per variant/i],
    ['p99 latency per variant', /^p99 latency per variant$/i],
    ['agreement', /agreement/i],
    ['guardrail state', /^guardrail state$/i],
    ['rollbacks', /rollbacks/i],
    ['flag staleness', /^flag snapshot age$/i],
  ])('shows %s', (_, title) => {
    const panel = panels.find((p) => title.test(p.title));
    expect(panel).toBeDefined();
    expect(panel?.targets?.length).toBeGreaterThan(0);
  });

  it('queries only router metrics and labels, through the datasource variable', () => {
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'namespace', 'route']);
    for (const panel of panels) {
      expect(panel.datasource?.uid, panel.title).toBe('${datasource}');
      expect(panel.description, panel.title).toBeTruthy();
      for (const target of panel.targets ?? []) checkExpr(target.expr, `panel "${panel.title}"`);
    }
    for (const annotation of dashboard.annotations.list.filter((a) => a.expr !== undefined)) checkExpr(annotation.expr ?? '', 'annotation');
  });

  it('lays panels on the 24-column grid without overlaps', () => {
    const cells = new Map<string, string>();
    for (const panel of dashboard.panels) {
      const { x, y, w, h } = panel.gridPos;
      expect(x + w, panel.title).toBeLessThanOrEqual(24);
      for (let row = y; row < y + h; row++) {
        for (let col = x; col < x + w; col++) {
          const key = `${row}:${col}`;
          expect(cells.get(key), `${panel.title} overlaps`).toBeUndefined();
          cells.set(key, panel.title);
        }
      }
    }
  });
});

describe('chart add-ons (ci/ha-values.yaml)', () => {
  let manifests: Manifest[] = [];
  let rules: PrometheusRuleEntry[] = [];

  beforeAll(() => {
    manifests = render({ valuesFiles: [join(chartDir, 'ci/ha-values.yaml')] });
    rules = (only(manifests, 'PrometheusRule').spec?.groups ?? []).flatMap((g) => g.rules);
  });

  it('ships the dashboard file verbatim in a ConfigMap the Grafana sidecar picks up', () => {
    const configMap = only(manifests.filter((m) => m.metadata.name.endsWith('-dashboard')), 'ConfigMap');
    expect(configMap.metadata.labels?.grafana_dashboard).toBe('1');
    expect(configMap.data?.['switchyard.json']).toBe(dashboardText.trimEnd());
  });

  it('alerts on rollbacks, stale flags, shadow and pair drops, guardrail breaches and degraded coordination', () => {
    expect(rules.map((r) => r.alert)).toEqual(expect.arrayContaining([
      'SwitchyardRollback', 'SwitchyardFlagsStale', 'SwitchyardShadowDropping', 'SwitchyardPairsDropping',
      'SwitchyardGuardrailBreach', 'SwitchyardPolicyReloadRejected', 'SwitchyardCoordinationDegraded',
    ]));
    for (const rule of rules) {
      checkExpr(rule.expr, `alert ${rule.alert ?? '?'}`);
      expect(rule.labels?.severity, rule.alert).toMatch(/^(critical|warning|info)$/);
      expect(rule.labels?.team, 'alertLabels from values').toBe('ml-platform');
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
      expect(rule.annotations?.description, rule.alert).toBeTruthy();
      // Prometheus templates must survive helm's own templating untouched.
      for (const text of Object.values(rule.annotations ?? {})) expect(text).not.toMatch(/<no value>/);
    }
    const rollback = rules.find((r) => r.alert === 'SwitchyardRollback');
    expect(rollback?.labels?.severity).toBe('critical');
    expect(rollback?.annotations?.summary).toContain('{{ $labels.route }}');
    expect(rules.find((r) => r.alert === 'SwitchyardFlagsStale')?.expr).toMatch(/switchyard_flag_snapshot_age_seconds\{[^}]*\}\) > 60$/);
  });

  it('takes alert thresholds from values', () => {
    const tuned = render({
      valuesFiles: [join(chartDir, 'ci/ha-values.yaml')],
      values: { prometheusRule: { flagStaleSeconds: 300, shadowDropRatio: 0.2 } },
    });
    const tunedRules = (only(tuned, 'PrometheusRule').spec?.groups ?? []).flatMap((g) => g.rules);
    expect(tunedRules.find((r) => r.alert === 'SwitchyardFlagsStale')?.expr).toMatch(/> 300$/);
    expect(tunedRules.find((r) => r.alert === 'SwitchyardShadowDropping')?.expr.trim()).toMatch(/> 0\.2$/);
  });
});

describe('the metric contract matches the router', () => {
  it('every metric the router registers is in the contract with the same labels, and labels agree', async () => {
    const { Metrics } = await import('../../src/metrics/registry.js');
    const registered = new Metrics({ defaultMetrics: false }).registry.getMetricsAsArray() as unknown as { name: string; labelNames: readonly string[] }[];
    for (const metric of registered) {
      expect(routerMetrics[metric.name], `${metric.name} is missing from test/deploy/chart.ts routerMetrics`).toBeDefined();
      expect([...metric.labelNames].sort()).toEqual([...routerMetrics[metric.name]!.labels].sort());
    }
  });
});
