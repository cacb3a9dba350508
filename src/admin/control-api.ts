// Admin API of the controller: the live analysis of a route and a manual rollback.
import type { FastifyInstance } from 'fastify';
import type { Controller } from '../control/controller.js';
import type { StateStore } from '../control/state-store.js';
import { SWY_ERR_ROUTE_UNKNOWN } from '../errors.js';
import { adminNameOf, type AdminAuth } from './auth.js';

/**
 * Registers GET /v1/routes/:route/analysis and POST /v1/routes/:route/rollback (bearer token). A rollback answers
 * whether it is on disk (`persisted`, with a SWY_ERR_STATE_WRITE warning when not): one that is not would be undone
 * by a restart.
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
  };
}
