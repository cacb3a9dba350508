// Every alert rule of the chart, as helm renders it, passes `promtool check rules` and its promtool unit tests (a firing and a silent case each).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
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
