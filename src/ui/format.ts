// How the page writes numbers: each guardrail in its own unit, times relative to now.

/** A guardrail's estimate or bound in its unit: percentage points, a latency ratio, or a share. */
export function formatEffect(guardrail: string, value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  switch (guardrail) {
    case 'latency_log_mean':
    case 'ttft_log_mean': {
      const pct = (Math.exp(value) - 1) * 100;
      return `${pct >= 0 ? '+' : ''}${pct.toFixed(Math.abs(pct) < 10 ? 1 : 0)}%`;
    }
    case 'error_rate':
    case 'latency_exceedance':
    case 'stream_gap_exceedance':
    case 'stream_interruptions': {
      const pp = value * 100;
      return `${pp >= 0 ? '+' : ''}${pp.toFixed(Math.abs(pp) < 1 ? 2 : 1)} pp`;
    }
    default:
      return `${(value * 100).toFixed(value < 0.1 ? 2 : 1)}%`;
  }
}

/** What each guardrail measures, for people. */
export const guardrailLabel: Record<string, string> = {
  error_ceiling: 'Error ceiling (breaker)',
  p99_ceiling: 'p99 latency ceiling (breaker)',
  error_rate: 'Error rate vs champion',
  latency_log_mean: 'Typical latency vs champion',
  latency_exceedance: 'Latency tail vs champion',
  prediction_divergence: 'Prediction mix vs champion',
  ttft_log_mean: 'Time to first token vs champion',
  stream_gap_exceedance: 'Stalled streams vs champion',
  stream_interruptions: 'Interrupted streams vs champion',
};

export function percent(x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : `${(x * 100).toFixed(digits)}%`;
}

/** "12 s", "4 min", "2.5 h". */
export function duration(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export function clock(iso: string | number): string {
  const d = new Date(iso);
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}
