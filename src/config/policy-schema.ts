// Zod schemas for policy files (routes, arms, stickiness, timeouts): the single source of policy types.
import { z } from 'zod';

const routeName = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, {
  message: 'must be 1-63 characters of lowercase letters, digits and "-", starting with a letter or digit',
});
const armName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, {
  message: 'must be 1-63 characters of letters, digits, ".", "_" and "-"',
});
const upstreamUrl = z.string().superRefine((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be an absolute http:// or https:// URL such as http://127.0.0.1:9001' });
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    ctx.addIssue({ code: 'custom', message: `protocol ${url.protocol} is not allowed; use http:// or https://` });
  }
  if (url.search || url.hash || url.username) {
    ctx.addIssue({ code: 'custom', message: 'must not carry a query, fragment or credentials' });
  }
});

export const httpMethods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
const httpMethod = z.enum(httpMethods);

export const challengerModes = ['canary', 'ab', 'shadow'] as const;
const percent = z.number().int({ message: "must be a whole number from 0 to 100 (Unleash rollouts are whole percents)" }).min(0).max(100);

export const predictionProtocols = ['kserve-v1', 'open-inference-v2', 'openai', 'json'] as const;
export const predictionKinds = ['class', 'score', 'text'] as const;

const matchSchema = z.strictObject({
  pathPrefix: z.string().regex(/^\/[^\s?#]*$/, { message: 'must start with "/" and contain no spaces, "?" or "#"' }),
  methods: z.array(httpMethod).min(1).default(['POST']),
});

const championSchema = z.strictObject({
  name: armName,
  url: upstreamUrl,
});

/** An HTTP field name (RFC 9110 §5.1: a token). */
const headerNamePattern = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
const headerName = z.string().regex(headerNamePattern, { message: 'must be a valid HTTP header name' });

/**
 * Header fields a mirror rewrite may not set or remove, and why: the proxy frames the body and sets these itself, and
 * `x-switchyard-shadow` is how an upstream tells a mirror from a served request (README, "Shadow traffic and the prediction log").
 */
export const mirrorHeadersNotRewritable: Readonly<Record<string, string>> = {
  'content-length': 'the proxy frames the rewritten body itself',
  'transfer-encoding': 'the proxy frames the rewritten body itself',
  host: "undici sends the shadow upstream's own authority",
  connection: 'hop-by-hop fields belong to one connection (RFC 9110 §7.6.1)',
  'keep-alive': 'hop-by-hop fields belong to one connection (RFC 9110 §7.6.1)',
  'proxy-connection': 'hop-by-hop fields belong to one connection (RFC 9110 §7.6.1)',
  te: 'hop-by-hop fields belong to one connection (RFC 9110 §7.6.1)',
  upgrade: 'hop-by-hop fields belong to one connection (RFC 9110 §7.6.1)',
  trailer: 'the proxy does not forward trailers',
  expect: 'the client has already been told to send its body',
  'x-request-id': "the mirror carries the served request's id, so both answers can be found in the upstreams' logs",
  'x-switchyard-shadow': 'every mirror carries it so upstreams can skip side effects',
};

function checkRewritableHeader(name: string, ctx: z.RefinementCtx, path: (string | number)[]): void {
  const why = mirrorHeadersNotRewritable[name.toLowerCase()];
  if (why !== undefined) ctx.addIssue({ code: 'custom', path, message: `${name} cannot be rewritten: ${why}; remove it from the rewrite` });
}

/**
 * How a shadow challenger's copy of a request differs from the served one, so one endpoint can serve two models
 * (README, "Shadow traffic and the prediction log"). Compiled once into the snapshot (src/decision/compile.ts), applied by src/shadow/mirror.ts.
 */
const mirrorRewriteSchema = z
  .strictObject({
    /** JSON Pointer → value, set in the mirrored JSON body (an object member is added or replaced, an array element replaced, "-" appends). */
    json: z.record(z.string(), z.json()).optional(),
    headers: z.strictObject({
      /** Header fields set on the mirror (replacing any the client sent under that name). */
      set: z.record(z.string(), z.string().regex(/^[\t\x20-\x7e\x80-\xff]*$/, { message: 'must be a header value without control characters (no CR, LF or NUL)' })).optional(),
      /** Header fields the mirror does not carry. */
      remove: z.array(headerName).optional(),
    }).optional(),
  })
  .superRefine((rewrite, ctx) => {
    // Keys are checked here rather than by a key schema, whose error would only say "Invalid key in record".
    const pointers = Object.keys(rewrite.json ?? {});
    for (const pointer of pointers) {
      if (!pointer.startsWith('/')) ctx.addIssue({ code: 'custom', path: ['json', pointer], message: `must be a JSON Pointer starting with "/", such as /${pointer}` });
      const nested = pointers.find((other) => other !== pointer && pointer.startsWith(`${other}/`));
      if (nested !== undefined) ctx.addIssue({ code: 'custom', path: ['json', pointer], message: `is inside ${nested}, which this rewrite also sets; set ${nested} to the whole value instead` });
    }
    const set = Object.keys(rewrite.headers?.set ?? {});
    const setLower = new Set(set.map((name) => name.toLowerCase()));
    for (const name of set) {
      if (!headerNamePattern.test(name)) ctx.addIssue({ code: 'custom', path: ['headers', 'set', name], message: 'must be a valid HTTP header name (letters, digits and !#$%&\'*+.^_`|~-)' });
      checkRewritableHeader(name, ctx, ['headers', 'set', name]);
    }
    (rewrite.headers?.remove ?? []).forEach((name, index) => {
      checkRewritableHeader(name, ctx, ['headers', 'remove', index]);
      if (setLower.has(name.toLowerCase())) ctx.addIssue({ code: 'custom', path: ['headers', 'remove', index], message: `${name} is also set; a set field already replaces what the client sent, so remove it from one of the lists` });
    });
    if (pointers.length === 0 && set.length === 0 && (rewrite.headers?.remove ?? []).length === 0) {
      ctx.addIssue({ code: 'custom', message: 'rewrites nothing: give json pointers, headers.set or headers.remove, or delete the rewrite' });
    }
  });

const challengerSchema = z.strictObject({
  name: armName,
  url: upstreamUrl,
  mode: z.enum(challengerModes),
  percent: percent.default(0),
  fallback: z.boolean().default(false),
  /** Shadow challengers only: how the mirrored copy of each request is changed before it is sent. */
  rewrite: mirrorRewriteSchema.optional(),
});

const stickinessSchema = z
  .strictObject({
    header: headerName.optional(),
    query: z.string().min(1).optional(),
    cookie: z.string().min(1).optional(),
  })
  .refine((s) => [s.header, s.query, s.cookie].filter((v) => v !== undefined).length === 1, {
    message: 'set exactly one of header, query or cookie',
  });

const timeoutsSchema = z.strictObject({
  connectMs: z.number().int().min(1).max(60_000).default(1_000),
  /** Upstream answer time; also how long a request may wait for one of the route's upstream connections. */
  requestMs: z.number().int().min(1).max(600_000).default(30_000),
  shadowMs: z.number().int().min(1).max(600_000).optional(),
  /** A request body with no byte arriving for this long gets 408 (nginx's client_body_timeout is 60 s). */
  bodyIdleMs: z.number().int().min(1).max(600_000).default(60_000),
});

const flagSchema = z.strictObject({
  name: z.string().min(1).max(100),
});

/**
 * The shadow budget: mirrors are shed while the champion's recent latency (an exponentially weighted mean over its last
 * answers, src/decision/champion-latency.ts) is above `latencyMs`, or above `ratio` × its slow-moving baseline.
 */
const shedSchema = z
  .strictObject({
    /** Shed while the champion's recent mean latency is above this many ms. */
    latencyMs: z.number().gt(0).max(600_000).optional(),
    /** Shed while the champion's recent mean latency is above this multiple of its baseline. */
    ratio: z.number().gt(1).max(100).optional(),
    /** Answers the recent mean spans (its weight is 2 / (samples + 1)): smaller reacts faster and flaps more. */
    samples: z.number().int().min(1).max(10_000).default(20),
    /** Answers the baseline spans; a slowdown lasting much longer than this becomes the new baseline. */
    baselineSamples: z.number().int().min(10).max(1_000_000).default(1_000),
    /** Mirrors resume once the recent mean is back below this share of the bound that shed them (hysteresis). */
    resumeBelow: z.number().gt(0).max(1).default(0.8),
  })
  .refine((shed) => shed.latencyMs !== undefined || shed.ratio !== undefined, {
    message: 'set latencyMs (e.g. 250), ratio (e.g. 2) or both: the champion latency above which mirrors are shed',
  })
  .refine((shed) => shed.baselineSamples > shed.samples, {
    path: ['baselineSamples'],
    message: 'must be larger than samples: the baseline has to move more slowly than the recent mean it is compared with',
  });

const shadowSchema = z.strictObject({
  maxInFlight: z.number().int().min(1).max(100_000).default(64),
  methods: z.array(httpMethod).min(1).default(['POST', 'GET', 'HEAD']),
  maxBodyBytes: z.number().int().min(0).max(64 * 1024 * 1024).default(256 * 1024),
  /** Optional shadow budget: shed mirrors first when the champion slows down. */
  shed: shedSchema.optional(),
});

const predictionsSchema = z.strictObject({
  protocol: z.enum(predictionProtocols).default('json'),
  pointer: z.string().regex(/^(\/.*)?$/, { message: 'must be a JSON Pointer such as /predictions/0 (RFC 6901)' }).optional(),
  /** Defaults: text for openai, class otherwise. */
  kind: z.enum(predictionKinds).optional(),
  tolerance: z.number().min(0).default(0),
  sampleRate: z.number().min(0).max(1).default(1),
  logInputs: z.boolean().default(false),
  redact: z.array(z.string().regex(/^\/.*/, { message: 'must be a JSON Pointer starting with "/"' })).default([]),
  rawKeys: z.boolean().default(false),
  /** Bytes of each response copied (off the served path) for extraction; longer answers are marked truncated. */
  maxResponseBytes: z.number().int().min(256).max(16 * 1024 * 1024).default(256 * 1024),
});

const durationMs = z.union([
  z.number().int().min(0),
  z.string().regex(/^\d+(ms|s|m|h)$/, { message: 'must be a duration such as 500ms, 60s, 5m or 1h' }),
]).transform((value) => {
  if (typeof value === 'number') return value;
  const amount = Number.parseInt(value, 10);
  const unit = value.replace(/^\d+/, '');
  return amount * (unit === 'ms' ? 1 : unit === 's' ? 1_000 : unit === 'm' ? 60_000 : 3_600_000);
});

/** A field an earlier version accepted and this one no longer uses: refused with what to do instead. */
function removedField(why: string) {
  return z.unknown().optional().superRefine((value, ctx) => {
    if (value !== undefined) ctx.addIssue({ code: 'custom', message: `no longer used: ${why}; delete this field` });
  });
}

const errorRateSchema = z
  .strictObject({
    /** Absolute worsening tolerated: the challenger's error rate may exceed the champion's by this much (default 0.01). */
    margin: z.number().min(0).max(1).optional(),
    /** Relative worsening tolerated: challenger rate <= champion rate × (1 + relativeMargin) + margin (margin then defaults to 0). */
    relativeMargin: z.number().min(0).max(100).optional(),
    /** Hard circuit breaker: a sequential test that the challenger's error share is above this ceiling. */
    ceiling: z.number().gt(0).lt(1).default(0.5),
    /** Challenger requests before the error breaker may trip. */
    minRequests: z.number().int().min(1).default(10),
    window: removedField('the error breaker is a sequential test over all challenger requests (README, Guardrails)'),
  })
  .transform(({ window: _removed, ...rest }) => ({
    ...rest,
    margin: rest.margin ?? (rest.relativeMargin !== undefined ? 0 : 0.01),
    relativeMargin: rest.relativeMargin ?? 0,
  }));

const latencySchema = z
  .strictObject({
    /** Tolerated latency ratio challenger/champion: judged on the log-latency mean and on the tail (exceedance). */
    ratio: z.number().gt(1).max(100).default(1.2),
    /**
     * Extra share of challenger requests over the champion's p95 tolerated beyond what a challenger exactly at
     * `ratio` would have (docs/statistics.md, "Latency tail").
     */
    exceedanceMargin: z.number().min(0).max(1).default(0),
    /** Champion requests used to fix the tail threshold (its p95). */
    baselineRequests: z.number().int().min(20).max(100_000).default(1_000),
    /** Hard circuit breaker: a sequential test that more than 1 % of challenger requests are slower than this, in ms. */
    p99CeilingMs: z.number().gt(0).default(5_000),
    /** Challenger requests before the latency breaker may trip. */
    minRequests: z.number().int().min(1).default(50),
    window: removedField('the latency breaker is a sequential test over all challenger requests (README, Guardrails)'),
  })
  .transform(({ window: _removed, ...rest }) => rest);

const guardrailsSchema = z.strictObject({
  /** Family-wise probability of a false rollback, breakers included (docs/statistics.md, "The alpha budget"). */
  alpha: z.number().gt(0).lt(0.5).default(0.05),
  correction: z.enum(['holm', 'bonferroni']).default('holm'),
  /** Requests per arm before the statistical guardrails may judge (below it: "collecting"). */
  minRequests: z.number().int().min(2).default(50),
  /** Planned requests per experiment (N* of the mixing variance, docs/statistics.md); fixed before data is seen. */
  plannedRequests: z.number().int().min(100).default(10_000),
  errorRate: errorRateSchema.prefault({}),
  latency: latencySchema.prefault({}),
  /** Shadow routes: the gate to start a canary. */
  shadow: z.strictObject({
    /** Largest tolerated share of paired predictions that disagree. */
    maxDisagreement: z.number().min(0).max(1).default(0.05),
  }).default({ maxDisagreement: 0.05 }),
  /** A/B routes: the winner on ground-truth accuracy (feedback labels). */
  ab: z.strictObject({
    alpha: z.number().gt(0).lt(0.5).default(0.05),
    /** Promote a challenger that wins (otherwise the winner is only reported). */
    promote: z.boolean().default(false),
  }).default({ alpha: 0.05, promote: false }),
});

/** A gate names the step percentage the route waits before entering, or "promote" for the promotion after the last step. */
const gateTarget = z.union([z.number().int({ message: 'must be one of the rollout steps (a whole percent) or "promote"' }), z.literal('promote')], {
  message: 'must be one of the rollout steps (a whole percent) or "promote"',
});

const confirmSchema = z.strictObject({
  /** Asked with a JSON POST; a 2xx answer lets the route go on (Flagger's confirm-promotion works the same way). */
  url: z.string().superRefine((value, ctx) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be an absolute http:// or https:// URL such as https://ci.example.com/confirm' });
      return;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') ctx.addIssue({ code: 'custom', message: `protocol ${url.protocol} is not allowed; use http:// or https://` });
  }),
  /** The steps (percentages) the route waits at until the URL answers 2xx, and/or "promote". */
  before: z.array(gateTarget).min(1, { message: 'name at least one step percentage (or "promote") the webhook must confirm' }),
  /** Time between two asks while the answer is not 2xx. */
  interval: durationMs.default(10_000),
  /** How long one ask may take; a slower answer counts as a refusal and is asked again after the interval. */
  timeout: durationMs.default(5_000),
});

/** Gate targets must be steps of the rollout (or "promote" when it promotes), each listed once. */
function checkGateTargets(targets: readonly (number | 'promote')[], steps: readonly number[], promote: boolean, path: readonly (string | number)[], ctx: z.RefinementCtx): void {
  const seen = new Set<number | 'promote'>();
  targets.forEach((target, index) => {
    if (seen.has(target)) ctx.addIssue({ code: 'custom', path: [...path, index], message: `${target} is listed twice` });
    seen.add(target);
    if (target === 'promote') {
      if (!promote) ctx.addIssue({ code: 'custom', path: [...path, index], message: 'rollout.promote is false, so there is no promotion to wait for; remove "promote" or set promote: true' });
    } else if (!steps.includes(target)) {
      ctx.addIssue({ code: 'custom', path: [...path, index], message: `${target} is not one of the steps (${steps.join(', ')}); list the step percentages the route waits before entering, or "promote"` });
    }
  });
}

/** Actions a detected prediction divergence can take (docs/statistics.md, "Prediction divergence and drift"). */
export const divergenceActions = ['rollback', 'hold', 'report'] as const;

const divergenceSchema = z.strictObject({
  /** rollback: a guardrail in the statistical family; hold: no rollout step while divergent; report: shown only. */
  action: z.enum(divergenceActions, { message: 'must be rollback, hold or report' }).default('report'),
  /** Classes the model can answer (the test's prior spreads over them; labels beyond are pooled as "other"). */
  classes: z.number().int().min(2).max(256).default(16),
  /** Parsed answers per arm before the comparison is judged. */
  minAnswers: z.number().int().min(1).max(1_000_000).default(100),
  /** Scores and text lengths: champion answers whose quantiles fix the comparison's bins. */
  referenceAnswers: z.number().int().min(20).max(1_000_000).default(500),
  /** Scores and text lengths: bins of the comparison. */
  bins: z.number().int().min(2).max(50).default(10),
  /**
   * A shadow challenger that mirrors to the champion itself (same url, a small percent): how often the champion
   * disagrees with itself is the floor the other shadows' disagreement is judged against.
   */
  noiseFloor: z.string().min(1).optional(),
});

const driftFeatureSchema = z.strictObject({
  /** Where the feature is in the JSON request body. */
  pointer: z.string().regex(/^\/.*/, { message: 'must be a JSON Pointer starting with "/", such as /instances/0/age' }),
  kind: z.enum(['numeric', 'categorical'], { message: 'must be numeric or categorical' }),
  /** The `feature` label in metrics and events (default: the pointer). */
  name: z.string().min(1).max(100).optional(),
});

const driftSchema = z.strictObject({
  /** Length of a tumbling window; the first window with `minCount` values is the reference. */
  windowMs: durationMs.pipe(z.number().int().min(100, { message: 'must be at least 100 ms' })).default(3_600_000),
  /** Values a window needs to be judged (or to become the reference). */
  minCount: z.number().int().min(10).max(10_000_000).default(200),
  /** Practical thresholds: a shift smaller than these is not reported, however many values back it. */
  psi: z.number().gt(0).max(10).default(0.2),
  jensenShannon: z.number().gt(0).max(Math.LN2).default(0.05),
  /** Level of each window's comparison against the statistic's null quantile at its sample size. */
  alpha: z.number().gt(0).lt(0.5).default(0.01),
  /** Bins of numeric features (reference quantiles) and tracked labels of categorical ones. */
  bins: z.number().int().min(2).max(50).default(10),
  /** Also watch each arm's own predictions. */
  predictions: z.boolean().default(true),
  /** Input features, read from the request body (JSON). */
  features: z.array(driftFeatureSchema).max(32).default([]),
});

/**
 * Streaming answers (OpenAI-style server-sent events, any chunked body): what ends a complete answer and the service
 * levels judged as guardrails, relative to the champion (docs/statistics.md, "Streaming service levels").
 */
const streamingSchema = z.strictObject({
  /**
   * The last bytes of a complete answer (its final SSE event's data, e.g. "[DONE]"); an answer that ends without them
   * after a 2xx is interrupted. null: only an upstream error after the headers interrupts a stream.
   */
  terminal: z.string().min(1).max(64, { message: 'must be at most 64 characters (the end of the last event, such as [DONE])' }).nullable().default('[DONE]'),
  /** Time to the first body byte: the challenger's log mean may exceed the champion's by at most this ratio. */
  ttft: z.strictObject({ ratio: z.number().gt(1).max(100).default(1.2) }).prefault({}),
  /** Gaps between body chunks: a stream stalls when one gap exceeds thresholdMs; margin is the tolerated extra share of stalled streams. */
  gaps: z.strictObject({
    thresholdMs: z.number().gt(0).max(600_000).default(1_000),
    margin: z.number().min(0).max(1).default(0.01),
  }).prefault({}),
  /** Streams cut after a 2xx (no terminal, or an upstream error mid-answer): the tolerated extra share over the champion's. */
  interruptions: z.strictObject({ margin: z.number().min(0).max(1).default(0.01) }).prefault({}),
});

const rolloutSchema = z
  .strictObject({
    steps: z.array(z.number().int().min(1).max(100)).min(1).refine((steps) => steps.every((s, i) => i === 0 || s > steps[i - 1]!), { message: 'steps must increase, e.g. [1, 5, 25, 50, 100]' }),
    minDuration: durationMs.default(60_000),
    minRequests: z.number().int().min(1).default(500),
    /** At the last step, make the challenger the champion (otherwise hold at the last step, reported promotable). */
    promote: z.boolean().default(true),
    /** A person approves (switchyard approve) before the route enters each of these steps, or "promote" before the promotion. */
    approve: z.array(gateTarget).default([]),
    /** An external system confirms (a 2xx answer) before the route enters the steps it names. */
    confirm: confirmSchema.optional(),
  })
  .superRefine((rollout, ctx) => {
    checkGateTargets(rollout.approve, rollout.steps, rollout.promote, ['approve'], ctx);
    if (rollout.confirm) checkGateTargets(rollout.confirm.before, rollout.steps, rollout.promote, ['confirm', 'before'], ctx);
  });

export const routeSchema = z
  .strictObject({
    name: routeName,
    match: matchSchema,
    champion: championSchema,
    challengers: z.array(challengerSchema).default([]),
    stickiness: stickinessSchema.optional(),
    timeouts: timeoutsSchema.default({ connectMs: 1_000, requestMs: 30_000, bodyIdleMs: 60_000 }),
    /**
     * The route's inference has no side effect, so a POST that met an upstream connection closed before any answer
     * (the keep-alive race) may be sent once more on a fresh connection, as GET and HEAD always are.
     */
    sideEffectFree: z.boolean().default(false),
    bodyLimitBytes: z.number().int().min(0).max(1024 * 1024 * 1024).default(1024 * 1024),
    flag: flagSchema.optional(),
    shadow: shadowSchema.default({ maxInFlight: 64, methods: ['POST', 'GET', 'HEAD'], maxBodyBytes: 256 * 1024 }),
    predictions: predictionsSchema.optional(),
    guardrails: guardrailsSchema.optional(),
    rollout: rolloutSchema.optional(),
    divergence: divergenceSchema.optional(),
    drift: driftSchema.optional(),
    /** Measure and judge streamed answers (TTFT, gaps, interruptions, tokens); text/event-stream answers are measured without it. */
    streaming: streamingSchema.optional(),
    pairs: z.strictObject({
      /** How long a mirrored request waits for its other half before it is written unpaired. */
      ttlMs: z.number().int().min(100).max(3_600_000).default(30_000),
      /** Joined predictions kept for ground-truth feedback. */
      feedbackTtlMs: z.number().int().min(1_000).max(7 * 24 * 3_600_000).default(3_600_000),
    }).default({ ttlMs: 30_000, feedbackTtlMs: 3_600_000 }),
  })
  .superRefine((route, ctx) => {
    const names = new Set([route.champion.name]);
    route.challengers.forEach((challenger, index) => {
      if (names.has(challenger.name)) {
        ctx.addIssue({ code: 'custom', path: ['challengers', index, 'name'], message: `duplicate arm name "${challenger.name}"; every champion and challenger name in a route must differ` });
      }
      names.add(challenger.name);
      if (challenger.fallback && challenger.mode === 'shadow') {
        ctx.addIssue({ code: 'custom', path: ['challengers', index, 'fallback'], message: 'fallback applies only to canary and ab challengers (a shadow never serves the client)' });
      }
      if (challenger.rewrite !== undefined && challenger.mode !== 'shadow') {
        ctx.addIssue({ code: 'custom', path: ['challengers', index, 'rewrite'], message: `rewrite applies only to mirrors: set mode: shadow, or delete the rewrite (a ${challenger.mode} challenger serves the client's request unchanged)` });
      }
    });
    for (const field of ['divergence', 'drift'] as const) {
      if (route[field] !== undefined && (route.predictions === undefined || route.predictions.sampleRate === 0)) {
        ctx.addIssue({ code: 'custom', path: [field], message: `${field} compares extracted predictions: add a predictions block with sampleRate > 0 (e.g. predictions: { sampleRate: 1 })` });
      }
    }
    const floor = route.divergence?.noiseFloor;
    if (floor !== undefined) {
      const arm = route.challengers.find((c) => c.name === floor);
      if (arm === undefined || arm.mode !== 'shadow' || arm.url !== route.champion.url) {
        ctx.addIssue({ code: 'custom', path: ['divergence', 'noiseFloor'], message: `must name a shadow challenger whose url is the champion's (${route.champion.url}), e.g. { name: ${floor}, url: ${route.champion.url}, mode: shadow, percent: 5 }` });
      }
    }
    const served = route.challengers.filter((c) => c.mode !== 'shadow').reduce((sum, c) => sum + c.percent, 0);
    if (served > 100) {
      ctx.addIssue({ code: 'custom', path: ['challengers'], message: `canary and ab percents add up to ${served}; they must add up to at most 100` });
    }
  });

export const policySchema = z.strictObject({
  routes: z.array(routeSchema).min(1, { message: 'a policy needs at least one route' }),
});

/** A policy file as written by a user, after defaults are applied. */
export type Policy = z.infer<typeof policySchema>;
export type RoutePolicy = z.infer<typeof routeSchema>;
export type ChallengerPolicy = RoutePolicy['challengers'][number];
export type ChallengerMode = (typeof challengerModes)[number];
export type GuardrailPolicy = z.infer<typeof guardrailsSchema>;
export type RolloutPolicy = z.infer<typeof rolloutSchema>;
export type DivergencePolicy = z.infer<typeof divergenceSchema>;
export type DriftPolicy = z.infer<typeof driftSchema>;
export type StreamingPolicy = z.infer<typeof streamingSchema>;
export type MirrorRewritePolicy = z.infer<typeof mirrorRewriteSchema>;
export type ShedPolicy = z.infer<typeof shedSchema>;
/** Where a rollout waits: a step percentage, or "promote". */
export type GateTarget = z.infer<typeof gateTarget>;
/** Guardrail settings with every default applied (a route without a guardrails block gets these). */
export const defaultGuardrails: GuardrailPolicy = guardrailsSchema.parse({});
export type HttpMethod = (typeof httpMethods)[number];
