// The audit log: reloaded from audit.ndjson (ids continue, a torn last line is skipped and reported), bounded in bytes, paged and followed.
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog, type AuditEvent } from '../../../src/control/audit.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'swy-audit-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const entry = (action: string, route = 'iris') => ({ who: 'alice', action, route, before: null, after: null });

describe('AuditLog', () => {
  it('reloads the trail after a restart and continues its ids', async () => {
    const file = path.join(dir, 'audit.ndjson');
    const first = await AuditLog.open({ file });
    first.append(entry('pause'));
    first.append(entry('rollback', 'other'));
    await first.flush();
    const second = await AuditLog.open({ file });
    expect(second.loadReport).toMatchObject({ loaded: 2, lastId: 2, skippedLines: 0, tornTail: false });
    expect(second.list().map((e) => e.action)).toEqual(['rollback', 'pause']);
    expect(second.append(entry('resume')).id).toBe(3);
    await second.flush();
    expect((await readFile(file, 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as AuditEvent).id)).toEqual([1, 2, 3]);
  });

  it('skips a torn last line, reports it, and starts the next event on a fresh line', async () => {
    const file = path.join(dir, 'audit.ndjson');
    const log = await AuditLog.open({ file });
    log.append(entry('pause'));
    await log.flush();
    await appendFile(file, '{"id":2,"who":"controller","action":"rollb');
    const reopened = await AuditLog.open({ file });
    expect(reopened.loadReport).toMatchObject({ loaded: 1, lastId: 1, skippedLines: 1, tornTail: true });
    expect(reopened.append(entry('resume')).id).toBe(2);
    await reopened.flush();
    const again = await AuditLog.open({ file });
    expect(again.loadReport).toMatchObject({ loaded: 2, lastId: 2, skippedLines: 1, tornTail: false });
    expect(again.list().map((e) => e.action)).toEqual(['resume', 'pause']);
  });

  it('keeps ids continuing from a file larger than the memory budget (only its tail is read)', async () => {
    const file = path.join(dir, 'audit.ndjson');
    const pad = 'x'.repeat(500);
    const lines = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ id: i + 1, who: 'w', action: 'split.set', route: 'iris', before: null, after: null, detail: pad, at: new Date(0).toISOString() }));
    await writeFile(file, `${lines.join('\n')}\n`);
    const log = await AuditLog.open({ file, maxBytes: 64 * 1024 });
    expect(log.loadReport?.lastId).toBe(3000);
    expect(log.bytes).toBeLessThanOrEqual(64 * 1024);
    expect(log.size).toBeGreaterThan(10);
    expect(log.append(entry('pause')).id).toBe(3001);
  });

  it('stays within its byte budget and pages after an id, oldest first, with filters', async () => {
    const log = new AuditLog({ file: null, maxBytes: 4096 });
    for (let i = 0; i < 200; i++) log.append({ ...entry(i % 2 === 0 ? 'split.set' : 'rollback', i % 3 === 0 ? 'a' : 'b'), detail: { i } });
    expect(log.bytes).toBeLessThanOrEqual(4096);
    const page = log.page({ after: 190, limit: 5 });
    expect(page.events.map((e) => e.id)).toEqual([191, 192, 193, 194, 195]);
    expect(page.lastId).toBe(200);
    expect(page.firstId).toBeGreaterThan(1);
    const rollbacksOfA = log.page({ after: 0, limit: 100, route: 'a', actions: ['rollback'] }).events;
    expect(rollbacksOfA.length).toBeGreaterThan(0);
    expect(rollbacksOfA.every((e) => e.route === 'a' && e.action === 'rollback')).toBe(true);
    expect(log.page({ before: 195, limit: 2 }).events.map((e) => e.id)).toEqual([194, 193]);
    expect(log.page({ limit: 10, sinceMs: Date.now() + 60_000 }).events).toEqual([]);
  });

  it('reads a file from before ids continued (ids repeating after each restart) and still pages and continues correctly', async () => {
    const file = path.join(dir, 'audit.ndjson');
    const line = (id: number, action: string) => JSON.stringify({ id, who: 'w', action, route: 'iris', before: null, after: null, at: new Date(0).toISOString() });
    await writeFile(file, `${[line(1, 'pause'), line(2, 'resume'), line(1, 'rollback'), line(2, 'resume')].join('\n')}\n`);
    const log = await AuditLog.open({ file });
    expect(log.append(entry('split.set')).id).toBe(3);
    expect(log.page({ after: 2, limit: 10 }).events.map((e) => e.action)).toEqual(['split.set']);
    expect(log.page({ after: 1, limit: 10 }).events.map((e) => e.action)).toEqual(['resume', 'resume', 'split.set']);
  });

  it('tells subscribers of each new event, survives a throwing one, and stops after unsubscribe', () => {
    const log = new AuditLog({ file: null });
    const seen: number[] = [];
    log.subscribe(() => {
      throw new Error('bad listener');
    });
    const stop = log.subscribe((e) => seen.push(e.id));
    log.append(entry('pause'));
    stop();
    log.append(entry('resume'));
    expect(seen).toEqual([1]);
    expect(log.lastId).toBe(2);
  });
});
