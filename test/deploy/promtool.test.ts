// Every alert rule of the chart, as helm renders it, passes `promtool check rules` and its promtool unit tests (a firing and a silent case each).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chartDir } from './chart.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { chartRuleGroups, promtool, testRules } from '../helpers/promtool.js';
import type { PrometheusRuleEntry } from './chart.js';

const testFile = join(import.meta.dirname, 'promtool/alerts.test.yaml');

interface AlertCase { alertname: string; exp_alerts: unknown[] }
interface PromtoolTests { rule_files: string[]; tests: { name: string; alert_rule_test?: AlertCase[] }[] }

describe('alert rules under promtool', () => {
  let groups: { name: string; rules: PrometheusRuleEntry[] }[] = [];

  beforeAll(() => {
    groups = chartRuleGroups();
  });

  it('pass promtool check rules and every unit test in test/deploy/promtool/alerts.test.yaml', () => {
    const run = testRules(groups, testFile);
    expect(run.output).toContain('SUCCESS');
    expect(run.status, run.output).toBe(0);
    const check = promtool(['check', 'rules', 'rules.yaml'], run.dir);
    expect(check.status, check.output).toBe(0);
    expect(check.output).toMatch(new RegExp(`SUCCESS: ${groups.flatMap((g) => g.rules).length} rules found`));
  });

  it('cover every alert of the chart with a case where it fires and one where it stays silent', () => {
    const tests = parse(readFileSync(testFile, 'utf8')) as PromtoolTests;
    const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
    const alerts = groups.flatMap((g) => g.rules).map((r) => r.alert).filter((a): a is string => a !== undefined);
    expect(alerts.length).toBeGreaterThanOrEqual(7);
    for (const alert of alerts) {
      expect(cases.some((c) => c.alertname === alert && c.exp_alerts.length > 0), `${alert}: no case where it fires`).toBe(true);
      expect(cases.some((c) => c.alertname === alert && c.exp_alerts.length === 0), `${alert}: no case where it stays silent`).toBe(true);
    }
  });

  it('show the first rollback of a pre-created series on the dashboard (annotation and panels), which a series born at 1 never showed', () => {
    const dashboard = JSON.parse(readFileSync(join(chartDir, 'dashboards/switchyard.json'), 'utf8')) as { annotations: { list: { name: string; expr?: string }[] }; panels: { title: string; targets?: { expr: string }[] }[] };
    // Grafana's variables as a dashboard viewer would have them: this namespace, every route, a one-hour range.
    const grafana = (expr: string) => expr.replaceAll('$namespace', 'switchyard-ci').replaceAll('$route', '.*').replaceAll('$__range', '1h').replaceAll('$__rate_interval', '4m');
    const annotation = grafana(dashboard.annotations.list.find((a) => a.name === 'Rollbacks')!.expr!);
    const panel = (title: string) => grafana(dashboard.panels.find((p) => p.title === title)!.targets![0]!.expr);
    const seen = (expr: string) => `(${expr}) > bool 0.5`;
    const rolledBack = [{ series: 'switchyard_rollbacks_total{namespace="switchyard-ci",pod="sy-a",route="iris",reason="error_rate"}', values: '0 0 0 1x20' }];
    const bornAtOne = [{ series: 'switchyard_rollbacks_total{namespace="switchyard-ci",pod="sy-a",route="iris",reason="error_rate"}', values: '_ _ _ 1x20' }];
    const labels = 'route="iris", reason="error_rate"';
    const run = testRules(groups, {
      rule_files: ['rules.yaml'],
      evaluation_interval: '1m',
      tests: [
        {
          name: 'pre-created at 0',
          interval: '1m',
          input_series: rolledBack,
          promql_expr_test: [
            { expr: annotation, eval_time: '4m', exp_samples: [{ labels: `{${labels}}`, value: 1 }] },
            { expr: seen(panel('Rollbacks in range')), eval_time: '10m', exp_samples: [{ labels: `{${labels}}`, value: 1 }] },
            { expr: seen(panel('Rollbacks over time')), eval_time: '4m', exp_samples: [{ labels: `{${labels}}`, value: 1 }] },
          ],
        },
        {
          name: 'born at 1 (before pre-creation)',
          interval: '1m',
          input_series: bornAtOne,
          promql_expr_test: [
            { expr: annotation, eval_time: '4m', exp_samples: [] },
            { expr: seen(panel('Rollbacks in range')), eval_time: '10m', exp_samples: [{ labels: `{${labels}}`, value: 0 }] },
          ],
        },
      ],
    });
    expect(run.status, run.output).toBe(0);
  });

  it('fail when a rule stops doing what its tests say (the guardrail alert without its rollback exception)', () => {
    const broken = groups.map((g) => ({
      ...g,
      rules: g.rules.map((r) => (r.alert === 'SwitchyardGuardrailBreach' ? { ...r, expr: r.expr.slice(0, r.expr.indexOf('unless')) } : r)),
    }));
    const run = testRules(broken, testFile);
    expect(run.status).not.toBe(0);
    expect(run.output).toContain('guardrail breach stops after the rollback it announced');
  });
});
