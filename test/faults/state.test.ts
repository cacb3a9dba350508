// Fault injection for the persisted control state: saves that fail for real (a directory where state.json goes, a temp
// file that is /dev/full, a FIFO that hangs the write) and a hand-edited state.json the policy no longer admits.
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { constants, openSync, closeSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { request } from 'undici';
import { stringify } from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RouteView } from '../../src/admin/route-view.js';
import type { AuditEvent } from '../../src/control/audit.js';
import { runCli, startServe, type LogLine, type ServeProcess } from '../helpers/cli.js';
import { metric } from '../helpers/metrics.js';
import { startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';
import { startUpstreamPair, type UpstreamPair } from '../helpers/upstream.js';

const TOKEN = 'state-faults-token';
const TOKENS = [{ name: 'admin', secret: TOKEN }];

interface Warning { code: string; message: string }
interface Persistence { persisted: boolean; warnings?: Warning[] }

let upstreams: UpstreamPair;
beforeAll(async () => (upstreams = await startUpstreamPair()));
afterAll(() => upstreams?.close());

/** Routes named `names`, each with a canary `<name>-v2` at 10 % and a shadow `<name>-v3` at 100 %, unless `challengers` says otherwise. */
function policy(names: readonly string[], challengers?: (name: string) => { name: string; mode: string; percent: number }[]): unknown {
  return {
    routes: names.map((name) => ({
      name,
      match: { pathPrefix: `/v1/models/${name}`, methods: ['POST'] },
      champion: { name: `${name}-v1`, url: upstreams.champion.url },
      challengers: (challengers?.(name) ?? [{ name: `${name}-v2`, mode: 'canary', percent: 10 }, { name: `${name}-v3`, mode: 'shadow', percent: 100 }]).map((c) => ({ ...c, url: upstreams.challenger.url })),
      stickiness: { header: 'x-user-id' },
    })),
  };
}

async function call<T = Record<string, unknown>>(base: string, method: 'GET' | 'PUT' | 'POST', url: string, body?: unknown): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await request(`${base}${url}`, { method, headers, body: body === undefined ? null : JSON.stringify(body) });
  const text = await res.body.text();
  return { status: res.statusCode, body: JSON.parse(text) as T };
}

const events = async (base: string, route?: string) => (await call<{ events: AuditEvent[] }>(base, 'GET', `/v1/events?limit=1000${route ? `&route=${route}` : ''}`)).body.events;
const routeOf = async (base: string, route: string) => (await call<RouteView>(base, 'GET', `/v1/routes/${route}`)).body;

/** Temp files of state.json left in `dir`. */
const leftovers = async (dir: string) => (await readdir(dir)).filter((f) => /^state\.json\..*\.tmp$/.test(f));

const savedState = async (dir: string) => JSON.parse(await readFile(path.join(dir, 'state.json'), 'utf8')) as { overrides: Record<string, unknown>; paused: string[]; rolledBack: string[]; rolledBackFrom: Record<string, unknown> };

/** Makes every rename onto `<dir>/state.json` fail for real (EISDIR): state.json becomes a non-empty directory. */
async function blockStateFile(dir: string): Promise<void> {
  await rm(path.join(dir, 'state.json'), { force: true });
  await mkdir(path.join(dir, 'state.json', 'blocked'), { recursive: true });
}
const unblockStateFile = (dir: string) => rm(path.join(dir, 'state.json'), { recursive: true, force: true });

function expectNotPersisted(reply: { status: number; body: Persistence }, reason: RegExp): void {
  expect(reply.status).toBe(200);
  expect(reply.body.persisted).toBe(false);
  expect(reply.body.warnings).toHaveLength(1);
  expect(reply.body.warnings![0]!.code).toBe('SWY_ERR_STATE_WRITE');
  expect(reply.body.warnings![0]!.message).toContain('state.json');
  expect(reply.body.warnings![0]!.message).toMatch(reason);
}

describe('a change that cannot be saved is reported, applied in memory, audited and retried', () => {
  let swy: RunningSwitchyard | undefined;
  afterEach(async () => {
    await swy?.close();
    swy = undefined;
  });

  it('answers persisted:false with SWY_ERR_STATE_WRITE for pause, set, rollback and resume; no temp file is left; the next change saves once the disk is back', async () => {
    // A long retry delay: every failed save below is caused by a change (no background retry, no tight loop).
    swy = await startSwitchyard(policy(['iris', 'other']), { adminTokens: TOKENS, stateRetryMs: 600_000 });
    const ok = await call<Persistence>(swy.adminUrl, 'POST', '/v1/routes/other/pause');
    expect(ok.body).toMatchObject({ changed: true, persisted: true });
    expect(ok.body.warnings).toBeUndefined();
    await blockStateFile(swy.dir);

    const paused = await call<Persistence & { route: RouteView; changed: boolean }>(swy.adminUrl, 'POST', '/v1/routes/iris/pause');
    expectNotPersisted(paused, /EISDIR/);
    expect(paused.body).toMatchObject({ changed: true, route: { paused: true } });
    const set = await call<Persistence & { route: RouteView }>(swy.adminUrl, 'PUT', '/v1/routes/iris/split', { challenger: 'iris-v2', percent: 30 });
    expectNotPersisted(set, /EISDIR/);
    expect(set.body.route.challengers[0]).toMatchObject({ name: 'iris-v2', percent: 30, servedPercent: 30 });
    const rolledBack = await call<Persistence & { changed: boolean }>(swy.adminUrl, 'POST', '/v1/routes/iris/rollback');
    expectNotPersisted(rolledBack, /EISDIR/);
    expect(rolledBack.body.changed).toBe(true);

    // Applied in memory: the route serves only the champion; serving is unaffected.
    expect(await routeOf(swy.adminUrl, 'iris')).toMatchObject({ paused: true, rolledBack: true, champion: { servedPercent: 100 } });
    const res = await request(`${swy.dataUrl}/v1/models/iris:predict`, { method: 'POST', body: '{}', headers: { 'x-user-id': 'u1' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-switchyard-variant']).toBe('iris-v1');
    await res.body.dump();

    // Counted once per failed save, and nothing left behind.
    expect(await metric(swy.adminUrl, 'switchyard_state_save_failures_total')).toBe(3);
    expect(await metric(swy.adminUrl, 'switchyard_state_unsaved_changes')).toBeGreaterThan(0);
    expect(await leftovers(swy.dir)).toEqual([]);

    // Audited: each change, and that it was not persisted (once per change, not per retry).
    const audit = await events(swy.adminUrl, 'iris');
    expect(audit.map((e) => e.action).reverse()).toEqual(['pause', 'state.not_persisted', 'split.set', 'state.not_persisted', 'rollback', 'state.not_persisted']);
    const notPersisted = audit.filter((e) => e.action === 'state.not_persisted').reverse();
    expect(notPersisted.map((e) => (e.detail as { changes: string[] }).changes)).toEqual([['pause'], ['override'], ['rollback']]);
    expect(notPersisted[0]!.detail).toMatchObject({ code: 'SWY_ERR_STATE_WRITE', persisted: false });
    expect((notPersisted[0]!.detail as { reason: string }).reason).toMatch(/EISDIR/);

    // The disk is back: the next change saves everything, and says so.
    await unblockStateFile(swy.dir);
    const resumed = await call<Persistence & { changed: boolean }>(swy.adminUrl, 'POST', '/v1/routes/iris/resume');
    expect(resumed.body).toMatchObject({ changed: true, persisted: true });
    expect(resumed.body.warnings).toBeUndefined();
    expect(await savedState(swy.dir)).toMatchObject({ paused: ['other'], rolledBack: [], overrides: { iris: { challengers: [{ name: 'iris-v2', percent: 30 }, { name: 'iris-v3', percent: 100 }] } } });
    expect((await events(swy.adminUrl, 'iris'))[0]).toMatchObject({ action: 'state.persisted', who: 'state' });
    expect(await metric(swy.adminUrl, 'switchyard_state_save_failures_total')).toBe(3);
    expect(await metric(swy.adminUrl, 'switchyard_state_unsaved_changes')).toBe(0);
  });

  it('retries on its own with a backoff, without a new change, once the disk is back', async () => {
    swy = await startSwitchyard(policy(['iris']), { adminTokens: TOKENS, stateRetryMs: 20 });
    await blockStateFile(swy.dir);
    expectNotPersisted(await call<Persistence>(swy.adminUrl, 'POST', '/v1/routes/iris/pause'), /EISDIR/);
    const running = swy;
    await vi.waitFor(async () => expect(await metric(running.adminUrl, 'switchyard_state_save_failures_total')).toBeGreaterThanOrEqual(3), { timeout: 10_000, interval: 20 });
    await unblockStateFile(swy.dir);
    await vi.waitFor(async () => expect((await savedState(running.dir)).paused).toEqual(['iris']), { timeout: 10_000, interval: 20 });
    expect(await metric(swy.adminUrl, 'switchyard_state_unsaved_changes')).toBe(0);
    expect(await leftovers(swy.dir)).toEqual([]);
  });

  it('reports a full disk (the temp file is /dev/full: ENOSPC) and removes the temp file', async () => {
    swy = await startSwitchyard(policy(['iris']), { adminTokens: TOKENS, stateRetryMs: 600_000 });
    await symlink('/dev/full', path.join(swy.dir, `state.json.${process.pid}.tmp`));
    expectNotPersisted(await call<Persistence>(swy.adminUrl, 'POST', '/v1/routes/iris/pause'), /ENOSPC/);
    expect(await leftovers(swy.dir)).toEqual([]);
    expect(await metric(swy.adminUrl, 'switchyard_state_save_failures_total')).toBe(1);
  });

  it('answers within the save wait when the disk hangs (the temp file is a FIFO nobody reads), then saves once it moves', async () => {
    swy = await startSwitchyard(policy(['iris']), { adminTokens: TOKENS, stateSaveWaitMs: 300, stateRetryMs: 20 });
    const fifo = path.join(swy.dir, `state.json.${process.pid}.tmp`);
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    let reader: number | null = null;
    try {
      const started = performance.now();
      const reply = await call<Persistence>(swy.adminUrl, 'POST', '/v1/routes/iris/pause');
      expect(performance.now() - started).toBeLessThan(5_000);
      expectNotPersisted(reply, /did not finish within 300 ms/);
      // A GET is answered meanwhile: the hung write holds no lock the API needs.
      expect(await routeOf(swy.adminUrl, 'iris')).toMatchObject({ paused: true });
    } finally {
      // The disk moves again: the blocked open returns; fsync on a FIFO fails, the FIFO is removed, the retry saves.
      reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    }
    const running = swy;
    await vi.waitFor(async () => expect((await savedState(running.dir)).paused).toEqual(['iris']), { timeout: 10_000, interval: 20 });
    closeSync(reader);
    expect(await leftovers(swy.dir)).toEqual([]);
  });
});

describe('the CLI prints the warning', () => {
  let dir: string;
  let served: ServeProcess | undefined;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'swy-state-cli-'));
    await writeFile(path.join(dir, 'policy.yaml'), stringify(policy(['iris'])));
    served = await startServe(path.join(dir, 'policy.yaml'), { PATH: process.env.PATH, SWITCHYARD_LOG_LEVEL: 'info', SWITCHYARD_DATA_DIR: path.join(dir, 'data'), SWITCHYARD_ADMIN_TOKEN: TOKEN });
  });
  afterAll(async () => {
    if (served !== undefined && served.child.exitCode === null) {
      served.child.kill('SIGTERM');
      await once(served.child, 'exit');
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('switchyard pause/set/rollback/resume on a disk that refuses the save: exit 0, the change is made, stderr names SWY_ERR_STATE_WRITE and ENOSPC', async () => {
    const data = path.join(dir, 'data');
    await mkdir(data, { recursive: true });
    // A full disk for the real process: its temp file is /dev/full.
    await symlink('/dev/full', path.join(data, `state.json.${served!.child.pid}.tmp`));
    const env = { SWITCHYARD_ADMIN_URL: served!.adminUrl, SWITCHYARD_ADMIN_TOKEN: TOKEN };
    const pause = await runCli(['pause', 'iris'], env);
    expect(pause.code).toBe(0);
    expect(pause.stdout).toContain('iris: paused');
    expect(pause.stderr).toMatch(/warning: SWY_ERR_STATE_WRITE: .*state\.json.*ENOSPC/);
    expect(pause.stderr).toMatch(/lost on restart/);
    expect(await leftovers(data)).toEqual([]);

    // The same for the other commands, with state.json blocked by a directory (EISDIR).
    await blockStateFile(data);
    for (const args of [['set', 'iris', 'iris-v2', '20'], ['rollback', 'iris'], ['resume', 'iris'], ['set', 'iris', 'iris-v2', '5', '--json']]) {
      const run = await runCli(args, env);
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(0);
      expect(run.stderr, args.join(' ')).toMatch(/warning: SWY_ERR_STATE_WRITE: .*state\.json.*EISDIR/);
    }
    const failedLines = served!.lines.filter((l: LogLine) => l.code === 'SWY_ERR_STATE_WRITE');
    expect(failedLines.length).toBeGreaterThanOrEqual(5);
    expect(await leftovers(data)).toEqual([]);
    await unblockStateFile(data);
    const ok = await runCli(['pause', 'iris'], env);
    expect(ok.stderr).toBe('');
    expect((await savedState(data)).paused).toEqual(['iris']);
  });
});

/** A pino logger whose JSON lines are collected. */
function capturingLogger(): { logger: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString().split('\n')) if (text !== '') lines.push(JSON.parse(text) as LogLine);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

describe('a state.json the policy does not admit is cleaned at start-up and at every reload', () => {
  let swy: RunningSwitchyard | undefined;
  const dirs: string[] = [];
  afterEach(async () => {
    await swy?.close();
    swy = undefined;
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  it('drops an unknown challenger, shares over 100 %, an invalid mode and unknown routes with a warning and an audit event; keeps everything else; saves the cleaned file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'swy-state-bad-'));
    dirs.push(dir);
    await writeFile(path.join(dir, 'state.json'), JSON.stringify({
      version: 1,
      overrides: {
        iris: { challengers: [{ name: 'iris-v9', mode: 'canary', percent: 10 }], groupId: 'iris' },
        other: { challengers: [{ name: 'other-v2', mode: 'canary', percent: 100 }, { name: 'other-v3', mode: 'ab', percent: 100 }] },
        third: { challengers: [{ name: 'third-v2', mode: 'blue-green', percent: 10 }, { name: 'third-v3', mode: 'shadow', percent: 50 }] },
        ghost: { challengers: [{ name: 'ghost-v2', mode: 'canary', percent: 10 }] },
        fourth: { challengers: [{ name: 'fourth-v2', mode: 'canary', percent: 40 }, { name: 'fourth-v3', mode: 'shadow', percent: 20 }], groupId: 'g4' },
      },
      paused: ['iris', 'ghost'],
      rolledBack: ['other', 'fourth', 'ghost'],
      rolledBackFrom: {
        other: [{ name: 'other-v2', mode: 'canary', percent: 70 }, { name: 'other-v3', mode: 'ab', percent: 70 }],
        fourth: [{ name: 'fourth-v2', mode: 'canary', percent: 40 }],
      },
    }));
    const { logger, lines } = capturingLogger();
    swy = await startSwitchyard(policy(['iris', 'other', 'third', 'fourth']), { adminTokens: TOKENS, dataDir: dir, logger });

    // The routes whose override was dropped serve their policy split (canary and shadow not at 0 %).
    expect(await routeOf(swy.adminUrl, 'iris')).toMatchObject({ source: 'policy', paused: true, rolledBack: false, challengers: [{ name: 'iris-v2', percent: 10, servedPercent: 10 }, { name: 'iris-v3', mode: 'shadow', percent: 100 }] });
    expect(await routeOf(swy.adminUrl, 'third')).toMatchObject({ source: 'policy', challengers: [{ percent: 10, servedPercent: 10 }, { mode: 'shadow', percent: 100 }] });
    expect(await routeOf(swy.adminUrl, 'other')).toMatchObject({ rolledBack: true, challengers: [{ percent: 10, servedPercent: 0 }, { mode: 'shadow', percent: 100 }] });
    // The valid override and its route's rollback stay.
    expect(await routeOf(swy.adminUrl, 'fourth')).toMatchObject({ rolledBack: true, groupId: 'g4', challengers: [{ percent: 40, servedPercent: 0 }, { mode: 'shadow', percent: 20 }] });

    const dropped = (await events(swy.adminUrl)).filter((e) => e.action === 'state.dropped').reverse();
    const summary = dropped.map((e) => `${e.route} ${(e.detail as { what: string }).what}`).sort();
    expect(summary).toEqual(['ghost override', 'ghost pause', 'ghost rollback', 'iris override', 'other override', 'other rollbackFrom', 'third override']);
    const why = (route: string, what: string) => String((dropped.find((e) => e.route === route && (e.detail as { what: string }).what === what)!.detail as { why: string }).why);
    expect(why('iris', 'override')).toMatch(/iris-v9.*not a challenger of route iris/);
    expect(why('other', 'override')).toMatch(/200 %/);
    expect(why('other', 'rollbackFrom')).toMatch(/140 %/);
    expect(why('third', 'override')).toMatch(/challengers.0.mode: must be one of (shadow|canary|ab)/);
    expect(why('ghost', 'pause')).toMatch(/no route named ghost/);
    expect(dropped[0]).toMatchObject({ who: 'state', detail: { trigger: 'start-up' } });
    expect(dropped.find((e) => e.route === 'iris')!.before).toMatchObject({ challengers: [{ name: 'iris-v9' }] });

    const warnings = lines.filter((l) => l.level === 40 && l.msg.startsWith('control state entry dropped'));
    expect(warnings).toHaveLength(7);

    await swy.app.state.flush();
    const saved = await savedState(dir);
    expect(saved).toMatchObject({ paused: ['iris'], rolledBack: ['fourth', 'other'], rolledBackFrom: { fourth: [{ name: 'fourth-v2', percent: 40 }] } });
    expect(Object.keys(saved.overrides)).toEqual(['fourth']);
    expect(saved.rolledBackFrom.other).toBeUndefined();
  });

  it('drops what a reloaded policy no longer has, and nothing else', async () => {
    swy = await startSwitchyard(policy(['iris', 'other']), { adminTokens: TOKENS });
    expect((await call(swy.adminUrl, 'PUT', '/v1/routes/iris/split', { challenger: 'iris-v2', percent: 30 })).status).toBe(200);
    expect((await call(swy.adminUrl, 'PUT', '/v1/routes/other/split', { challenger: 'other-v2', percent: 25 })).status).toBe(200);
    expect((await call(swy.adminUrl, 'POST', '/v1/routes/iris/pause')).status).toBe(200);
    expect((await call(swy.adminUrl, 'POST', '/v1/routes/other/pause')).status).toBe(200);
    // The new policy renames iris's canary and removes route other.
    await swy.writePolicy(policy(['iris'], (name) => [{ name: `${name}-v4`, mode: 'canary', percent: 5 }, { name: `${name}-v3`, mode: 'shadow', percent: 100 }]));
    expect(await swy.app.reload('test')).toMatchObject({ ok: true, changed: true });

    expect(await routeOf(swy.adminUrl, 'iris')).toMatchObject({ source: 'policy', paused: true, challengers: [{ name: 'iris-v4', percent: 5, servedPercent: 5 }, { name: 'iris-v3', percent: 100 }] });
    const dropped = (await events(swy.adminUrl)).filter((e) => e.action === 'state.dropped');
    expect(dropped.map((e) => `${e.route} ${(e.detail as { what: string }).what}`).sort()).toEqual(['iris override', 'other override', 'other pause']);
    expect(dropped.every((e) => (e.detail as { trigger: string }).trigger === 'reload')).toBe(true);
    await swy.app.state.flush();
    expect(await savedState(swy.dir)).toMatchObject({ overrides: {}, paused: ['iris'], rolledBack: [] });

    // A reload that changes nothing drops nothing.
    expect(await swy.app.reload('again')).toMatchObject({ ok: true });
    expect((await events(swy.adminUrl)).filter((e) => e.action === 'state.dropped')).toHaveLength(3);
  });
});
