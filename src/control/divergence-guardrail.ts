// The divergence policy's effect on the controller: a guardrail in the statistical family (rollback), a verdict that holds the rollout (hold), or nothing (report).
import { judgeDivergence, predictionsSince, type DivergenceMemory, type DivergenceReport, type PredictionCounts } from '../analysis/divergence.js';
import type { GuardrailPolicy } from '../config/policy-schema.js';
import type { RouteDecision } from '../decision/snapshot.js';
import type { Metrics } from '../metrics/registry.js';
import { compileExtractor } from '../record/extract.js';
import type { ArmPredictionCounts } from '../record/prediction-stats.js';
import { divergenceGuardrailName, statisticalFamilyAlpha, type ExtraGuardrail, type GuardrailVerdict } from './guardrails.js';

/** One tick's divergence of a route: the reports, and the guardrail test of the controlled challenger (rollback). */
export interface RouteDivergence {
  reports: DivergenceReport[];
  extra: ExtraGuardrail[];
}

/**
 * Judges every challenger of a route that has a divergence policy, on the pooled counts when the replicas pool them,
 * else on this replica's since the experiment began. `controlled` is the challenger the guardrails judge.
 */
export function routeDivergence(decision: RouteDecision, guardrails: GuardrailPolicy, source: PredictionCounts | null, memory: DivergenceMemory, pooled: Readonly<Record<string, ArmPredictionCounts>> | null, controlled: string | null): RouteDivergence {
  const policy = decision.route.policy.divergence;
  if (policy === undefined) return { reports: [], extra: [] };
  const challengers = decision.route.policy.challengers.map((c) => ({ name: c.name, mode: decision.state.challengers.find((s) => s.name === c.name)?.mode ?? c.mode }));
  const reports = judgeDivergence(
    {
      policy,
      guardrails,
      kind: compileExtractor(decision.route.policy.predictions).kind,
      challengers,
      counts: pooled ?? predictionsSince(source, memory, decision.route.name),
      familyAlpha: statisticalFamilyAlpha(guardrails),
    },
    memory,
  );
  const judged = reports.find((r) => r.challenger === controlled && r.mode !== 'shadow');
  return { reports, extra: policy.action === 'rollback' && judged !== undefined ? [divergenceGuardrail(judged)] : [] };
}

/**
 * After the guardrails: reports as judged (rollback), the hold verdict appended (hold), and the metric set. Returns
 * the verdicts the rollout acts on.
 */
export function settleDivergence(route: string, divergence: RouteDivergence, verdicts: GuardrailVerdict[], controlled: string | null, metrics: Metrics): { reports: DivergenceReport[]; verdicts: GuardrailVerdict[] } {
  const inFamily = verdicts.find((v) => v.name === divergenceGuardrailName);
  const reports = divergence.reports.map((r) => (r.challenger === controlled ? judgedReport(r, inFamily) : r));
  for (const r of reports) if (r.jensenShannon !== null) metrics.predictionDivergence.labels(route, r.challenger).set(r.jensenShannon);
  const held = reports.find((r) => r.challenger === controlled && r.action === 'hold' && r.mode !== 'shadow');
  return { reports, verdicts: held !== undefined ? [...verdicts, holdVerdict(held)] : verdicts };
}

/** The guardrail test of the controlled challenger's comparison (action rollback): its e-value joins the Holm family. */
export function divergenceGuardrail(report: DivergenceReport): ExtraGuardrail {
  return {
    name: divergenceGuardrailName,
    logEValue: report.state === 'collecting' ? null : report.logEValue,
    nChampion: report.champion.n,
    nChallenger: report.challengerSide.n,
    estimate: report.jensenShannon,
    describe: report.evidence,
  };
}

/**
 * The verdict of `action: hold`: outside the alpha family (it never rolls back). A divergent challenger gets a
 * statistical verdict that is never "within", so no rollout step or promotion happens while it lasts; otherwise the
 * verdict is informational.
 */
export function holdVerdict(report: DivergenceReport): GuardrailVerdict {
  return {
    name: divergenceGuardrailName,
    kind: report.state === 'divergent' ? 'statistical' : 'divergence',
    state: report.state === 'collecting' ? 'collecting' : 'healthy',
    nChampion: report.champion.n,
    nChallenger: report.challengerSide.n,
    estimate: report.jensenShannon,
    threshold: 0,
    pValue: report.pValue,
    csLower: null,
    csUpper: null,
    alpha: report.alpha,
    reason: report.state === 'divergent' ? `holding the rollout: ${report.reason}` : report.reason,
  };
}

/**
 * The report as the guardrails judged it: with `action: rollback` the family's (Holm-adjusted) verdict decides whether
 * the challenger is divergent, so the analysis and the rollback never disagree.
 */
export function judgedReport(report: DivergenceReport, verdict: GuardrailVerdict | undefined): DivergenceReport {
  if (report.action !== 'rollback' || verdict === undefined || report.state === 'collecting') return report;
  return verdict.state === 'breach' ? { ...report, state: 'divergent', reason: verdict.reason } : { ...report, state: 'not_divergent' };
}
