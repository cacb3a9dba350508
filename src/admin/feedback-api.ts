// POST /v1/feedback: ground-truth labels joined to recent predictions by request id (one status per item, never a 500 for unknown or ambiguous ids).
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import { z } from 'zod';
import { SWY_ERR_BAD_REQUEST } from '../errors.js';
import type { FeedbackResult } from '../record/pair-recorder.js';
import type { RecorderClient } from '../record/recorder-client.js';

const item = z.strictObject({
  requestId: z.string().min(1).max(200),
  label: z.union([z.string(), z.number(), z.boolean(), z.array(z.union([z.string(), z.number()]))]),
});
/** Body of POST /v1/feedback (also the OpenAPI document's schema, src/admin/openapi.ts). */
export const feedbackBody = z.union([item, z.array(item).min(1).max(10_000), z.strictObject({ items: z.array(item).min(1).max(10_000) })]);

/** Registers the feedback endpoint; `authorize` guards it with the admin bearer token. */
export function feedbackApi(recorder: Pick<RecorderClient, 'feedback'>, authorize: preHandlerHookHandler) {
  return (app: FastifyInstance) => {
    app.post('/v1/feedback', { preHandler: authorize }, async (request) => {
      const parsed = feedbackBody.safeParse(request.body);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new SWY_ERR_BAD_REQUEST(`body${issue.path.length ? `.${issue.path.join('.')}` : ''}: ${issue.message}; send {"requestId": "...", "label": ...} or an array of them`);
      }
      const items = Array.isArray(parsed.data) ? parsed.data : 'items' in parsed.data ? parsed.data.items : [parsed.data];
      const results = await recorder.feedback(items);
      const count = (status: FeedbackResult['status']): number => results.filter((r) => r.status === status).length;
      return { joined: count('joined'), unknown: count('unknown_request'), ambiguous: count('ambiguous_request'), results };
    });
  };
}
