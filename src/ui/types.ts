// The admin API's answers as the page reads them (the server's types live in src/admin and src/control; the browser build does not import server code).

export type GuardrailState = 'collecting' | 'healthy' | 'within' | 'breach';

export interface Overview {
  version: string;
  policyVersion: string;
  now: number;
  instanceId: string;
  coordination: string;
  changesEnabled: boolean;
  routes: OverviewRoute[];
}

export interface OverviewRoute {
  name: string;
  pathPrefix: string;
  methods: string[];
  champion: { name: string; url: string; servedPercent: number };
  challengers: { name: string; url: string; mode: string; percent: number; servedPercent: number; fallback: boolean }[];
  source: string;
  paused: boolean;
  rolledBack: boolean;
  flag: string | null;
  flags: string | null;
  phase: string;
  step: { index: number; percent: number; of: readonly number[] } | null;
  guardrails: { name: string; state: GuardrailState }[];
  judgedAt: number | null;
}

export interface Verdict {
  name: string;
  kind: 'breaker' | 'statistical' | 'divergence';
  state: GuardrailState;
  nChampion: number;
  nChallenger: number;
  estimate: number | null;
  threshold: number;
  pValue: number | null;
  csLower: number | null;
  csUpper: number | null;
  reason: string;
}

export interface Arm {
  name: string;
  role: string;
  requests: number;
  failures: number;
  errorRate: number | null;
  medianLatencyMs: number | null;
}

export interface Analysis {
  route: string;
  phase: string;
  decision: string;
  challenger: string | null;
  servedPercent: number;
  step: { index: number; percent: number; of: readonly number[] } | null;
  rollbackReason: string | null;
  arms: Arm[];
  guardrails: Verdict[];
  srm: { pValue: number; ok: boolean | null };
  /** An open approval gate (servers with approval gates; phase awaiting_approval). */
  approval?: { step: number | 'promote'; percent: number; since: string; waitingFor: string[]; approvedBy: string | null } | null;
  coordination: string;
  instanceId: string;
  role: string;
  leader: string | null;
  counts: { replicas: number | null };
  shadowGates: {
    challenger: string;
    agreement: { agree: number; of: number; rate: number | null; disagreementUpper: number | null; maxDisagreement: number; state: string };
    ready: boolean;
    reason: string;
  }[];
  abWinners: {
    champion: { variant: string; n: number; correct: number };
    challenger: { variant: string; n: number; correct: number };
    estimate: number | null;
    csLower: number | null;
    csUpper: number | null;
    state: string;
    winner: string | null;
    minLabelled: number;
  }[];
}

export interface History {
  route: string;
  since: number | null;
  stride: number;
  t: number[];
  phase: string[];
  servedPercent: number[];
  guardrails: { name: string; kind: string; state: string[]; estimate: (number | null)[]; lower: (number | null)[]; upper: (number | null)[]; threshold: (number | null)[] }[];
  breaches: { guardrail: string; at: number; estimate: number | null; threshold: number }[];
}

export interface AuditEvent {
  id: number;
  who: string;
  action: string;
  route: string;
  at: string;
  detail?: unknown;
}

export interface ApiError {
  error: { code: string; message: string };
}
