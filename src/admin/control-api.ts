// Admin API of the controller: the live analysis of a route, a manual rollback, and a person's approval and promotion.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Controller } from '../control/controller.js';
import type { StateStore } from '../control/state-store.js';
import { SWY_ERR_BAD_REQUEST, SWY_ERR_ROUTE_UNKNOWN } from '../errors.js';
import { adminNameOf, type AdminAuth } from './auth.js';

const note = z.string({ message: 'must be a string' }).max(1_000, { message: 'must be at most 1000 characters' });
const stepMessage = 'must be the step index the route waits to enter (analysis: approval.step), or "promote"';
export const approveBody = z.strictObject({
  step: z.union([z.number().int({ message: stepMessage }).min(0, { message: stepMessage }), z.literal('promote')], { message: stepMessage }).optional(),
  note: note.optional(),
});
/** `step`, when given, is the rollout step the person saw the route at: a route that moved on since is not promoted. */
export const promoteBody = z.strictObject({
  step: z.number().int({ message: 'must be the rollout step index the route is at (analysis: step.index)' }).min(0, { message: 'must be the rollout step index the route is at (analysis: step.index)' }).optional(),
  note: note.optional(),
});

/** The optional JSON body of approve and promote, or a 400 naming each bad field. */
function parseBody<T>(schema: z.ZodType<T>, body: unknown, allowed: string): T {
  const parsed = schema.safeParse(body ?? {});
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') return `${issue.keys.join(', ')}: unknown field${issue.keys.length > 1 ? 's' : ''} (allowed: ${allowed})`;
    return `${issue.path.length > 0 ? issue.path.join('.') : 'body'}: ${issue.path.length > 0 ? issue.message : `must be a JSON object with ${allowed}, or empty`}`;
  });
  throw new SWY_ERR_BAD_REQUEST(lines.join('; '));
}

/**
 * Registers GET /v1/routes/:route/analysis and POST /v1/routes/:route/rollback (bearer token). A rollback answers
 * whether it is on disk (`persisted`, with a SWY_ERR_STATE_WRITE warning when not): one that is not would be undone
 * by a restart. POST .../approve lets a route through the approval gate it waits at (SWY_ERR_CONFLICT when it waits at
 * none); POST .../promote serves the challenger 100 % now (control/phases.ts planPromotion). Both are audited with who.
 */
export function controlApi(controller: Controller, auth: AdminAuth, state: Pick<StateStore, 'persisted'>) {
  return (app: FastifyInstance) => {
    app.get<{ Params: { route: string } }>('/v1/routes/:route/analysis', async (request) => {
      const analysis = controller.analysis(request.params.route);
      if (analysis === null) throw new SWY_ERR_ROUTE_UNKNOWN(request.params.route);
      return analysis;
    });

    app.post<{ Params: { route: string } }>('/v1/routes/:route/rollback', { preHandler: auth.preHandler }, async (request) => {
      const before = controller.analysis(request.params.route);
      if (before === null) throw new SWY_ERR_ROUTE_UNKNOWN(request.params.route);
      const { changed } = controller.rollback(request.params.route, 'manual', before.guardrails, adminNameOf(request));
      const persistence = await state.persisted();
      return { route: request.params.route, changed, analysis: controller.analysis(request.params.route), ...persistence };
    });

    app.post<{ Params: { route: string } }>('/v1/routes/:route/approve', { preHandler: auth.preHandler }, async (request) => {
      const body = parseBody(approveBody, request.body, 'step, note');
      const result = controller.approve(request.params.route, adminNameOf(request), body.step, body.note);
      return { ...result, analysis: controller.analysis(request.params.route) };
    });

    app.post<{ Params: { route: string } }>('/v1/routes/:route/promote', { preHandler: auth.preHandler }, async (request) => {
      const body = parseBody(promoteBody, request.body, 'step, note');
      const result = await controller.promote(request.params.route, adminNameOf(request), body.note, body.step);
      const persistence = await state.persisted();
      return { ...result, analysis: controller.analysis(request.params.route), ...persistence };
    });
  };
}
