// Test helper: runs the machine's promtool (Debian's `prometheus` package; .ci/run installs it) on alert rules extracted from the rendered chart.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { stringify } from 'yaml';
import { chartDir, only, render, type PrometheusRuleEntry } from '../deploy/chart.js';

export interface PromtoolRun { status: number; output: string }

/** Runs promtool with `args` in `cwd`; throws with the fix when promtool is not installed. */
export function promtool(args: readonly string[], cwd: string): PromtoolRun {
  const run = spawnSync('promtool', args, { cwd, encoding: 'utf8' });
  if ((run.error as { code?: string } | undefined)?.code === 'ENOENT') {
    throw new Error('promtool is not installed: apt-get install prometheus (Debian; .ci/run installs it when `command -v promtool` finds none)');
  }
  if (run.error !== undefined) throw run.error;
  return { status: run.status ?? -1, output: `${run.stdout}${run.stderr}` };
}

/** The chart's alert rule groups as rendered with ci/ha-values.yaml (namespace switchyard-ci, team: ml-platform). */
export function chartRuleGroups(): { name: string; rules: PrometheusRuleEntry[] }[] {
  const manifests = render({ valuesFiles: [join(chartDir, 'ci/ha-values.yaml')] });
  return only(manifests, 'PrometheusRule').spec?.groups ?? [];
}

/**
 * Writes `groups` as rules.yaml into a fresh directory, with `tests` (a promtool test file whose rule_files names
 * rules.yaml: copied when it is a path, written when it is an object), and runs `promtool test rules` there.
 */
export function testRules(groups: unknown, tests: string | Record<string, unknown>): PromtoolRun & { dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-promtool-'));
  writeFileSync(join(dir, 'rules.yaml'), stringify({ groups }));
  let name = 'tests.yaml';
  if (typeof tests === 'string') {
    name = basename(tests);
    copyFileSync(tests, join(dir, name));
  } else {
    writeFileSync(join(dir, name), stringify(tests));
  }
  return { ...promtool(['test', 'rules', name], dir), dir };
}
