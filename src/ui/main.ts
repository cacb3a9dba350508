// The status page: polls the admin API every second and redraws only what changed; with a session token it can change routes.
import { call, CallError, session } from './api.js';
import { guardrailChart } from './chart.js';
import { byId, h } from './dom.js';
import { clock, formatEffect, guardrailLabel, percent } from './format.js';
import type { Analysis, AuditEvent, History, Overview, OverviewRoute } from './types.js';

const POLL_MS = 1000;
const EVENTS_SHOWN = 80;
const attentionPhases = new Set(['rolled_back', 'breach', 'awaiting_approval', 'paused']);
const badFlags = new Set(['stale', 'unauthorized', 'missing']);

const state = {
  overview: null as Overview | null,
  selected: null as string | null,
  filter: '',
  show: 'all' as 'all' | 'attention',
  eventsForSelected: false,
  who: null as string | null,
  rows: new Map<string, { tr: HTMLTableRowElement; signature: string; text: string; attention: boolean }>(),
  order: '',
  events: [] as AuditEvent[],
  seenEvents: new Set<number>(),
  firstEvents: true,
  /** The route whose action bar is drawn, so typing in its inputs is never interrupted by a redraw. */
  actionsFor: null as string | null,
  inFlight: false,
  /** The selected route's latest analysis: approve and promote send the step it shows. */
  analysis: null as Analysis | null,
};

// ---- small helpers ----------------------------------------------------------------------------------------------

function toast(message: string, kind: 'info' | 'error' = 'info'): void {
  const el = h('div', { class: kind }, message);
  byId('toast').appendChild(el);
  setTimeout(() => el.remove(), kind === 'error' ? 9000 : 4500);
}

function phaseBadge(phase: string): HTMLElement {
  return h('span', { class: `badge phase phase-${phase}` }, phase.replaceAll('_', ' '));
}

function routeOf(name: string | null): OverviewRoute | undefined {
  return name === null ? undefined : state.overview?.routes.find((r) => r.name === name);
}

const canChange = () => state.who !== null;

// ---- the route table --------------------------------------------------------------------------------------------

function needsAttention(r: OverviewRoute): boolean {
  return attentionPhases.has(r.phase) || r.paused || r.rolledBack || r.guardrails.some((g) => g.state === 'breach') || (r.flags !== null && badFlags.has(r.flags));
}

function rowSignature(r: OverviewRoute): string {
  return JSON.stringify([r.champion, r.challengers, r.phase, r.step, r.guardrails, r.flags, r.paused, r.rolledBack, r.pathPrefix]);
}

function splitBar(r: OverviewRoute): HTMLElement {
  const bar = h('div', { class: 'split', title: `${r.champion.name} ${r.champion.servedPercent}%` });
  bar.appendChild(h('span', { class: 'champion', style: `width:${r.champion.servedPercent}%` }));
  for (const c of r.challengers) if (c.servedPercent > 0) bar.appendChild(h('span', { class: c.mode, style: `width:${c.servedPercent}%`, title: `${c.name} ${c.servedPercent}%` }));
  const served = r.challengers.filter((c) => c.servedPercent > 0).map((c) => `${c.name} ${c.servedPercent}`);
  const mirrored = r.challengers.filter((c) => c.mode === 'shadow' && c.percent > 0).map((c) => `mirrors ${c.percent}`);
  return h('div', {}, bar, h('div', { class: 'splitlabel' }, [`${r.champion.name} ${r.champion.servedPercent}`, ...served, ...mirrored].join(' · ')));
}

function phaseCell(r: OverviewRoute): HTMLElement {
  const cell = h('div', {}, phaseBadge(r.phase));
  if (r.paused && r.phase !== 'paused') cell.appendChild(h('span', { class: 'badge phase-paused', style: 'margin-left:4px' }, 'paused'));
  if (r.step) cell.appendChild(h('div', { class: 'splitlabel' }, `step ${r.step.index + 1}/${r.step.of.length} · ${r.step.percent}%`));
  return cell;
}

function buildRow(r: OverviewRoute): HTMLTableRowElement {
  const tr = h('tr', { class: 'route', 'data-route': r.name, tabindex: 0, onclick: () => select(r.name), onkeydown: (e) => (e as KeyboardEvent).key === 'Enter' && select(r.name) });
  tr.append(
    h('td', {}, h('div', { class: 'name' }, r.name), h('div', { class: 'sub' }, r.pathPrefix)),
    h('td', {}, r.champion.name),
    h('td', {}, ...r.challengers.map((c) => h('div', {}, `${c.name} `, h('span', { class: `badge ${c.mode}` }, c.mode), ` ${c.percent}%`)), r.challengers.length === 0 ? h('span', { class: 'sub' }, 'none') : null),
    h('td', {}, splitBar(r)),
    h('td', {}, phaseCell(r)),
    h('td', {}, h('div', { class: 'dots' }, ...r.guardrails.map((g) => h('span', { class: `dot ${g.state}`, title: `${guardrailLabel[g.name] ?? g.name}: ${g.state}` })))),
    h('td', {}, r.flags === null ? h('span', { class: 'sub' }, '–') : h('span', { class: `badge flag-${r.flags}`, title: `flag ${r.flag ?? ''}` }, r.flags)),
  );
  return tr;
}

function renderRoutes(overview: Overview): void {
  const tbody = byId('routes').querySelector('tbody')!;
  const names = overview.routes.map((r) => r.name);
  const keep = new Set(names);
  for (const [name, row] of state.rows) {
    if (!keep.has(name)) {
      row.tr.remove();
      state.rows.delete(name);
    }
  }
  for (const r of overview.routes) {
    const signature = rowSignature(r);
    const row = state.rows.get(r.name);
    if (row !== undefined && row.signature === signature) continue;
    const tr = buildRow(r);
    if (r.name === state.selected) tr.classList.add('selected');
    if (row !== undefined) row.tr.replaceWith(tr);
    const text = [r.name, r.pathPrefix, r.champion.name, ...r.challengers.map((c) => c.name)].join(' ').toLowerCase();
    state.rows.set(r.name, { tr, signature, text, attention: needsAttention(r) });
  }
  const order = names.join('\n');
  if (order !== state.order) {
    state.order = order;
    tbody.replaceChildren(...names.map((n) => state.rows.get(n)!.tr));
  }
  applyFilter();
  const rolledBack = overview.routes.filter((r) => r.rolledBack).length;
  const waiting = overview.routes.filter((r) => r.phase === 'awaiting_approval').length;
  const attention = overview.routes.filter(needsAttention).length;
  byId('route-count').textContent = [`${overview.routes.length} routes`, rolledBack ? `${rolledBack} rolled back` : '', waiting ? `${waiting} awaiting approval` : '', attention ? `${attention} need attention` : ''].filter(Boolean).join(' · ');
}

function applyFilter(): void {
  const words = state.filter.toLowerCase().split(/\s+/).filter(Boolean);
  let visible = 0;
  for (const row of state.rows.values()) {
    const show = (state.show === 'all' || row.attention) && words.every((w) => row.text.includes(w));
    if (show) visible++;
    if (row.tr.hidden !== !show) row.tr.hidden = !show;
  }
  byId('routes-empty').hidden = visible > 0 || state.rows.size === 0;
}

function select(name: string): void {
  if (state.selected !== null) state.rows.get(state.selected)?.tr.classList.remove('selected');
  state.selected = name;
  state.rows.get(name)?.tr.classList.add('selected');
  history.replaceState(null, '', `#route=${encodeURIComponent(name)}`);
  void refreshSelected();
  renderEvents();
}

// ---- the selected route -----------------------------------------------------------------------------------------

/** Runs a change and reports it; a 404 for a whole endpoint means this server does not offer it yet. */
async function change(label: string, method: string, path: string, body?: unknown): Promise<void> {
  try {
    const result = await call<{ eventId?: number | null; changed?: boolean }>(method, path, { auth: true, body });
    const note = result?.changed === false ? ' (nothing to change)' : result?.eventId ? ` (audit event #${result.eventId})` : '';
    toast(`${label}: done${note}`);
  } catch (err) {
    const e = err as CallError;
    if (e.status === 404 && e.code === 'SWY_ERR_NOT_FOUND') toast(`${label}: this Switchyard has no ${method} ${path} endpoint (it answered 404). Upgrade the server to use it.`, 'error');
    else if (e.status === 401) {
      toast(`${label}: the token was refused (401); enter it again.`, 'error');
      signOut();
    } else toast(`${label}: ${e.code}: ${e.message}`, 'error');
  }
  await refresh();
}

function actionBar(route: OverviewRoute): HTMLElement {
  const base = `/v1/routes/${encodeURIComponent(route.name)}`;
  const confirmButton = (label: string, action: string, run: () => Promise<void>) => {
    const button = h('button', { type: 'button', class: 'danger', 'data-action': action }, label);
    let armed: number | null = null;
    button.addEventListener('click', () => {
      if (armed === null) {
        button.classList.add('confirm');
        button.textContent = `Confirm ${label.toLowerCase()}`;
        armed = window.setTimeout(() => {
          armed = null;
          button.classList.remove('confirm');
          button.textContent = label;
        }, 4000);
        return;
      }
      clearTimeout(armed);
      armed = null;
      button.classList.remove('confirm');
      button.textContent = label;
      void run();
    });
    return button;
  };
  const plain = (label: string, action: string, run: () => Promise<void>, primary = false) => h('button', { type: 'button', class: primary ? 'primary' : '', 'data-action': action, onclick: () => void run() }, label);
  const challenger = h('select', { 'aria-label': 'challenger', 'data-field': 'challenger' }, ...route.challengers.map((c) => h('option', { value: c.name }, c.name)));
  const pct = h('input', { type: 'number', min: 0, max: 100, step: 1, 'aria-label': 'percent', 'data-field': 'percent', value: route.challengers[0]?.percent ?? 0 });
  const mode = h('select', { 'aria-label': 'mode', 'data-field': 'mode' }, ...['canary', 'ab', 'shadow'].map((m) => h('option', { value: m }, m)));
  const syncInputs = () => {
    const c = route.challengers.find((x) => x.name === challenger.value);
    if (c) {
      pct.value = String(c.percent);
      mode.value = c.mode;
    }
  };
  challenger.addEventListener('change', syncInputs);
  syncInputs();
  const bar = h(
    'div',
    { class: 'actions', id: 'actions' },
    plain('Pause', 'pause', () => change(`Pause ${route.name}`, 'POST', `${base}/pause`)),
    plain('Resume', 'resume', () => change(`Resume ${route.name}`, 'POST', `${base}/resume`)),
    confirmButton('Roll back', 'rollback', () => change(`Roll back ${route.name}`, 'POST', `${base}/rollback`)),
    // Both send the step the person is looking at, so a route that moved on meanwhile is refused rather than advanced.
    confirmButton('Promote', 'promote', () => change(`Promote ${route.name}`, 'POST', `${base}/promote`, state.analysis?.route === route.name && state.analysis.step ? { step: state.analysis.step.index } : {})),
    plain('Approve', 'approve', () => change(`Approve ${route.name}`, 'POST', `${base}/approve`, state.analysis?.route === route.name && state.analysis.approval ? { step: state.analysis.approval.step } : {}), true),
    route.challengers.length > 0
      ? h(
          'span',
          { class: 'setsplit' },
          challenger,
          pct,
          '%',
          mode,
          plain('Set split', 'split', () => change(`Set ${challenger.value} to ${pct.value}% (${mode.value})`, 'PUT', `${base}/split`, { challenger: challenger.value, percent: Number(pct.value), mode: mode.value })),
        )
      : null,
  );
  return bar;
}

/** Enables what makes sense for the route's state; everything is disabled without a token. */
function updateActionStates(route: OverviewRoute): void {
  const bar = document.getElementById('actions');
  if (bar === null) return;
  const served = route.challengers.some((c) => c.percent > 0);
  const enabled: Record<string, boolean> = {
    pause: !route.paused && !route.rolledBack,
    resume: route.paused || route.rolledBack,
    rollback: !route.rolledBack && served,
    promote: !route.rolledBack && route.challengers.length > 0 && route.phase !== 'promoted',
    approve: route.phase === 'awaiting_approval',
    split: route.challengers.length > 0,
  };
  for (const button of bar.querySelectorAll<HTMLButtonElement>('button[data-action]')) {
    button.disabled = !canChange() || !enabled[button.dataset.action ?? ''];
  }
  for (const field of bar.querySelectorAll<HTMLInputElement | HTMLSelectElement>('[data-field]')) field.disabled = !canChange();
  const note = document.getElementById('readonly-note');
  if (note) note.hidden = canChange();
}

function reports(analysis: Analysis): HTMLElement[] {
  const out: HTMLElement[] = [];
  const gate = analysis.approval;
  if (gate) {
    const target = gate.step === 'promote' ? 'the promotion (100 %)' : `step ${gate.step + 1} (${gate.percent} %)`;
    out.push(
      h('div', { class: 'report approval phase-awaiting_approval' },
        h('b', {}, `Waiting for approval of ${target}`), ` since ${clock(gate.since)}`,
        h('div', { class: 'small' }, `waiting for: ${gate.waitingFor.join(' and ') || 'nothing (advancing)'}${gate.approvedBy ? ` · approved by ${gate.approvedBy}` : ''}`)),
    );
  }
  for (const gate of analysis.shadowGates) {
    const a = gate.agreement;
    out.push(
      h('div', { class: `report shadow-gate${gate.ready ? ' ready' : ''}` },
        h('b', {}, `Shadow ${gate.challenger}: `), gate.ready ? 'ready for a canary' : 'not ready yet',
        h('div', { class: 'small' }, `agreement ${a.agree}/${a.of} (${percent(a.rate)}), disagreement upper bound ${percent(a.disagreementUpper)} vs at most ${percent(a.maxDisagreement, 0)}`),
        h('div', { class: 'small sub' }, gate.reason)),
    );
  }
  for (const ab of analysis.abWinners) {
    const acc = (x: { n: number; correct: number }) => (x.n > 0 ? percent(x.correct / x.n) : '–');
    out.push(
      h('div', { class: `report ab-winner${ab.winner ? ' ready' : ''}` },
        h('b', {}, `A/B ${ab.challenger.variant} vs ${ab.champion.variant}: `), ab.winner ? `winner ${ab.winner}` : ab.state.replaceAll('_', ' '),
        h('div', { class: 'small' }, `accuracy ${acc(ab.challenger)} (${ab.challenger.n} labelled) vs ${acc(ab.champion)} (${ab.champion.n}); difference ${formatEffect('error_rate', ab.estimate)} [${formatEffect('error_rate', ab.csLower)}, ${formatEffect('error_rate', ab.csUpper)}]; ${ab.minLabelled} labels per arm needed`)),
    );
  }
  return out;
}

function renderDetail(route: OverviewRoute, analysis: Analysis | null, hist: History | null, now: number): void {
  const detail = byId('detail');
  byId('detail-empty').hidden = true;
  detail.hidden = false;
  if (state.actionsFor !== route.name) {
    state.actionsFor = route.name;
    detail.replaceChildren(
      h('div', { class: 'title' }, h('h3', {}, route.name), h('span', { id: 'detail-phase' }), h('span', { class: 'sub' }, `${route.methods.join(',')} ${route.pathPrefix}`)),
      actionBar(route),
      h('div', { class: 'readonly', id: 'readonly-note' }, state.overview?.changesEnabled === false ? 'Read-only: this server has no admin token configured (set SWITCHYARD_ADMIN_TOKEN and restart) — changes are refused.' : 'Read-only: enter an admin token (top right) to pause, resume, roll back, promote, approve or set the split.'),
      h('div', { id: 'detail-body' }),
    );
  }
  byId('detail-phase').replaceChildren(phaseBadge(route.phase), route.step ? h('span', { class: 'sub' }, ` step ${route.step.index + 1} of ${route.step.of.length} (${route.step.of.join(' → ')} %)`) : '');
  updateActionStates(route);
  const body = byId('detail-body');
  if (analysis === null) return;
  const facts = h('dl', { class: 'kv' },
    h('dt', {}, 'Challenger'), h('dd', {}, analysis.challenger ? `${analysis.challenger}, served ${analysis.servedPercent}%` : 'none served'),
    h('dt', {}, 'Decision'), h('dd', {}, analysis.decision.replaceAll('_', ' '), analysis.rollbackReason ? ` — rolled back by ${analysis.rollbackReason}` : ''),
    h('dt', {}, 'Sample ratio'), h('dd', {}, `p ${analysis.srm.pValue.toFixed(4)} ${analysis.srm.ok === false ? '(mismatch: holds the rollout)' : '(ok)'}`),
    h('dt', {}, 'Flag'), h('dd', {}, route.flag ? `${route.flag}: ${route.flags ?? '–'}` : `none (split from ${route.source})`),
    h('dt', {}, 'Replicas'), h('dd', {}, analysis.coordination === 'off' ? `this replica alone (${analysis.instanceId}; no Redis)` : `${analysis.counts.replicas ?? '?'} pooled · coordination ${analysis.coordination} · ${analysis.instanceId} is ${analysis.role}${analysis.leader ? ` · leader ${analysis.leader}` : ''}`),
  );
  const arms = h('table', { class: 'mini' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Arm'), h('th', {}, 'Role'), h('th', {}, 'Requests'), h('th', {}, 'Failures'), h('th', {}, 'Error rate'), h('th', {}, 'Median latency'))),
    h('tbody', {}, ...analysis.arms.map((a) => h('tr', {}, h('td', {}, a.name), h('td', {}, a.role), h('td', {}, a.requests), h('td', {}, a.failures), h('td', {}, percent(a.errorRate, 2)), h('td', {}, a.medianLatencyMs === null ? '–' : `${a.medianLatencyMs.toFixed(1)} ms`)))),
  );
  const charts = h('div', { class: 'charts' });
  for (const verdict of analysis.guardrails) {
    const series = hist?.guardrails.find((g) => g.name === verdict.name);
    const interval = verdict.csLower !== null && verdict.csUpper !== null ? ` [${formatEffect(verdict.name, verdict.csLower)}, ${formatEffect(verdict.name, verdict.csUpper)}]` : '';
    charts.appendChild(
      h('div', { class: `chart guardrail state-${verdict.state}`, 'data-guardrail': verdict.name },
        h('div', { class: 'head' }, h('b', {}, guardrailLabel[verdict.name] ?? verdict.name), h('span', {}, `${formatEffect(verdict.name, verdict.estimate)}${interval} · ${verdict.kind === 'breaker' ? 'ceiling' : 'margin'} ${formatEffect(verdict.name, verdict.threshold)} `, h('span', { class: `badge phase-${verdict.state === 'within' ? 'healthy' : verdict.state === 'breach' ? 'breach' : verdict.state}` }, verdict.state))),
        h('div', { class: 'why' }, `${verdict.reason} (n ${verdict.nChampion} / ${verdict.nChallenger})`),
        hist && series ? guardrailChart(hist, series, now, `${route.name}-${verdict.name}`) : h('div', { class: 'sub' }, 'no history yet'),
      ),
    );
  }
  body.replaceChildren(facts, ...reports(analysis), arms, charts);
}

async function refreshSelected(): Promise<void> {
  const name = state.selected;
  const route = routeOf(name);
  if (name === null || route === undefined) return;
  const base = `/v1/routes/${encodeURIComponent(name)}`;
  const [analysis, hist] = await Promise.all([call<Analysis>('GET', `${base}/analysis`).catch(() => null), call<History>('GET', `${base}/history`).catch(() => null)]);
  if (state.selected !== name) return;
  state.analysis = analysis;
  renderDetail(routeOf(name) ?? route, analysis, hist, state.overview?.now ?? Date.now());
}

// ---- the audit timeline -----------------------------------------------------------------------------------------

function eventSummary(e: AuditEvent): string {
  const d = (e.detail ?? {}) as Record<string, unknown>;
  if (e.action === 'rollback' && typeof d.reason === 'string') return `${e.route} · ${d.reason}`;
  if (e.action === 'split.set' || e.action === 'rollout.step' || e.action === 'promote') {
    const parts = [d.challenger, d.percent !== undefined ? `${String(d.percent)}%` : undefined, d.mode].filter((x) => x !== undefined);
    return `${e.route}${parts.length ? ` · ${parts.join(' ')}` : ''}`;
  }
  return e.route;
}

function renderEvents(): void {
  const list = byId('events');
  const scope = state.eventsForSelected && state.selected !== null ? state.selected : null;
  const events = scope === null ? state.events : state.events.filter((e) => e.route === scope);
  byId('events-scope').textContent = scope === null ? 'all routes' : `only ${scope}`;
  if (events.length === 0) {
    list.replaceChildren(h('div', { class: 'empty' }, 'No events yet.'));
    return;
  }
  list.replaceChildren(
    ...events.map((e) => {
      const fresh = !state.firstEvents && !state.seenEvents.has(e.id);
      return h('div', { class: `event${fresh ? ' new' : ''}`, 'data-event': e.id, 'data-action': e.action, 'data-route': e.route },
        h('time', { datetime: e.at, title: e.at }, clock(e.at)),
        h('span', {}, h('span', { class: `badge a-${e.action}` }, e.action)),
        h('span', { class: 'what', title: JSON.stringify(e.detail ?? {}) }, eventSummary(e), h('span', { class: 'sub' }, ` by ${e.who}`)));
    }),
  );
  for (const e of events) state.seenEvents.add(e.id);
  state.firstEvents = false;
}

async function refreshEvents(): Promise<void> {
  const answer = await call<{ events: AuditEvent[] }>('GET', `/v1/events?limit=${EVENTS_SHOWN}`).catch(() => null);
  if (answer === null) return;
  // Newest first, whatever order the server pages in.
  const events = [...answer.events].sort((a, b) => b.id - a.id);
  if (events[0]?.id === state.events[0]?.id && events.length === state.events.length) return;
  state.events = events;
  renderEvents();
}

// ---- header, token, polling -------------------------------------------------------------------------------------

function renderHeader(overview: Overview | null, error: string | null): void {
  const live = byId('live');
  live.classList.toggle('down', error !== null);
  live.querySelector('span')!.textContent = error !== null ? `disconnected: ${error}` : `live · ${clock(overview?.now ?? Date.now())}`;
  if (overview) {
    byId('meta').replaceChildren(
      h('span', {}, `v${overview.version}`),
      h('span', {}, 'instance ', h('b', {}, overview.instanceId)),
      h('span', {}, 'coordination ', h('b', {}, overview.coordination)),
      h('span', {}, 'policy ', h('b', {}, overview.policyVersion.slice(0, 12))),
    );
  }
  byId('who').textContent = state.who !== null ? `signed in as ${state.who}` : 'read-only';
  byId('token-button').textContent = state.who !== null ? 'Sign out' : 'Enter token';
}

function signOut(): void {
  session.token = null;
  state.who = null;
  renderHeader(state.overview, null);
  const route = routeOf(state.selected);
  if (route) updateActionStates(route);
}

async function useToken(token: string): Promise<string | null> {
  try {
    const { name } = await call<{ name: string }>('GET', '/v1/whoami', { token });
    session.token = token;
    state.who = name;
    return null;
  } catch (err) {
    const e = err as CallError;
    return e.code === 'SWY_ERR_ADMIN_DISABLED' ? 'This server has no admin token configured, so it refuses every change.' : e.status === 401 ? 'That token was refused.' : e.message;
  }
}

async function refresh(): Promise<void> {
  if (state.inFlight) return;
  state.inFlight = true;
  try {
    const overview = await call<Overview>('GET', '/v1/overview');
    state.overview = overview;
    // Measured for the 200-route test's report (performance.getEntriesByName('switchyard:routes')).
    const start = performance.now();
    renderRoutes(overview);
    performance.measure('switchyard:routes', { start, end: performance.now() });
    renderHeader(overview, null);
    if (state.selected !== null && routeOf(state.selected) === undefined) state.selected = null;
    await Promise.all([refreshSelected(), refreshEvents()]);
    if (document.body.dataset.ready !== 'true') {
      // Time from navigation to the first complete draw (the 200-route test reports it).
      document.body.dataset.readyMs = performance.now().toFixed(0);
      document.body.dataset.ready = 'true';
    }
  } catch (err) {
    renderHeader(state.overview, (err as Error).message);
  } finally {
    state.inFlight = false;
  }
}

function wire(): void {
  const filter = byId<HTMLInputElement>('filter');
  filter.addEventListener('input', () => {
    state.filter = filter.value;
    applyFilter();
  });
  for (const chip of document.querySelectorAll<HTMLButtonElement>('[data-show]')) {
    chip.addEventListener('click', () => {
      state.show = chip.dataset.show === 'attention' ? 'attention' : 'all';
      for (const other of document.querySelectorAll('[data-show]')) other.classList.toggle('on', other === chip);
      applyFilter();
    });
  }
  byId('events-scope').addEventListener('click', () => {
    state.eventsForSelected = !state.eventsForSelected;
    renderEvents();
  });
  byId('events-scope').title = 'click: all routes / the selected route only';
  const dialog = byId<HTMLDialogElement>('token-dialog');
  byId('token-button').addEventListener('click', () => {
    if (state.who !== null) return signOut();
    byId('token-error').textContent = '';
    dialog.showModal();
  });
  byId('token-cancel').addEventListener('click', () => dialog.close());
  byId('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = byId<HTMLInputElement>('token-input');
    void useToken(input.value.trim()).then((error) => {
      if (error !== null) {
        byId('token-error').textContent = error;
        return;
      }
      input.value = '';
      dialog.close();
      renderHeader(state.overview, null);
      const route = routeOf(state.selected);
      if (route) updateActionStates(route);
      toast(`Signed in as ${state.who}: changes are enabled for this tab.`);
    });
  });
}

async function start(): Promise<void> {
  wire();
  const fromHash = /^#route=(.+)$/.exec(location.hash);
  if (fromHash) state.selected = decodeURIComponent(fromHash[1]!);
  const saved = session.token;
  if (saved !== null && (await useToken(saved)) !== null) session.token = null;
  await refresh();
  if (state.selected === null && state.overview && state.overview.routes.length > 0) select(state.overview.routes[0]!.name);
  setInterval(() => {
    if (!document.hidden) void refresh();
  }, POLL_MS);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) void refresh();
  });
}

void start();
