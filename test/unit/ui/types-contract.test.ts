// The status page's copies of the admin API's answer types (src/ui/types.ts: the browser build cannot import server code) must accept what the server sends: `npm run typecheck` fails when a server type drifts from them.
import { describe, expect, it } from 'vitest';
import type { OverviewRoute as ServerOverviewRoute } from '../../../src/admin/ui.js';
import type { HistoryView } from '../../../src/admin/guardrail-history.js';
import type { AuditEvent as ServerAuditEvent } from '../../../src/control/audit.js';
import type { RouteAnalysis } from '../../../src/control/controller.js';
import type { GuardrailVerdict } from '../../../src/control/guardrails.js';
import type { Analysis, AuditEvent, History, OverviewRoute, Verdict } from '../../../src/ui/types.js';

describe('the status page reads what the admin API answers', () => {
  it('has page types every server answer is assignable to', () => {
    // An assignment the type-checker judges: a server answer that no longer fits the page's type fails typecheck.
    const answers = null as unknown as [GuardrailVerdict, ServerOverviewRoute, RouteAnalysis, HistoryView, ServerAuditEvent];
    const asThePageReadsThem: [Verdict, OverviewRoute, Analysis, History, AuditEvent] | null = answers;
    expect(asThePageReadsThem).toBeNull();
  });
});
