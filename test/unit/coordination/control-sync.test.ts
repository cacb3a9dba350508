// The three-way merge of replicated control state: seed, first contact, remote and local edits, generations, stale edits.
import { describe, expect, it } from 'vitest';
import { parseSharedControl, planSync, type LocalControl, type SharedControl, type SyncBase, type Versioned } from '../../../src/coordination/control-sync.js';

const serving: LocalControl = { rolledBack: false, paused: false, override: null };
const rolledBack: LocalControl = { ...serving, rolledBack: true };
const split = { challengers: [{ name: 'iris-v2', mode: 'canary' as const, percent: 25 }], groupId: 'iris' };

function shared(rev: number, control: LocalControl, gen = 0, by = 'other', reason = 'x'): Versioned {
  return { rev, record: { ...control, gen, by, reason } };
}
function synced(at: Versioned): SyncBase {
  return { rev: at.rev, gen: at.record.gen, control: { rolledBack: at.record.rolledBack, paused: at.record.paused, override: at.record.override } };
}
const fresh = (control: LocalControl): SyncBase => ({ rev: null, gen: null, control });

describe('planSync', () => {
  it('seeds an absent record from the first replica (generation 0)', () => {
    expect(planSync(serving, fresh(serving), null, 'r1')).toEqual({ kind: 'push', expectRev: 0, record: { ...serving, gen: 0, by: 'r1', reason: 'seed' } });
  });

  it('re-seeds after Redis lost its data, keeping the generation and this replica’s rollback', () => {
    const base = synced(shared(40, rolledBack, 3));
    expect(planSync(rolledBack, base, null, 'r1')).toMatchObject({ kind: 'push', expectRev: 0, record: { rolledBack: true, gen: 3 } });
  });

  it('adopts the fleet’s record at first contact (a replica restarted with an old state.json follows the fleet)', () => {
    const fleet = shared(9, serving, 2);
    expect(planSync(rolledBack, fresh(rolledBack), fleet, 'r1')).toEqual({ kind: 'apply', target: fleet, superseded: false });
  });

  it('keeps a local edit made before first contact (a person rolled back while Redis was away) and pushes it', () => {
    const fleet = shared(9, { ...serving, override: split }, 2);
    expect(planSync(rolledBack, fresh(serving), fleet, 'r1', 'manual')).toEqual({ kind: 'push', expectRev: 9, record: { rolledBack: true, paused: false, override: split, gen: 2, by: 'r1', reason: 'manual' } });
  });

  it('applies a remote rollback when nothing changed here', () => {
    const base = synced(shared(5, serving));
    const remote = shared(6, rolledBack, 0, 'leader', 'error_rate');
    expect(planSync(serving, base, remote, 'r1')).toEqual({ kind: 'apply', target: remote, superseded: false });
  });

  it('says in-sync when neither side changed', () => {
    const at = shared(5, serving);
    expect(planSync(serving, synced(at), at, 'r1')).toEqual({ kind: 'in-sync' });
  });

  it('pushes a local rollback with its reason and the same generation', () => {
    const at = shared(5, serving, 4);
    expect(planSync(rolledBack, synced(at), at, 'r1', 'error_ceiling')).toEqual({ kind: 'push', expectRev: 5, record: { ...rolledBack, gen: 4, by: 'r1', reason: 'error_ceiling' } });
  });

  it('starts a new generation when a person resumes a rollback', () => {
    const at = shared(5, rolledBack, 4);
    expect(planSync(serving, synced(at), at, 'r1')).toMatchObject({ kind: 'push', record: { rolledBack: false, gen: 5, reason: 'resume' } });
  });

  it('merges concurrent edits of different fields in one generation (a local pause, a remote split)', () => {
    const base = synced(shared(5, serving, 1));
    const remote = shared(6, { ...serving, override: split }, 1);
    expect(planSync({ ...serving, paused: true }, base, remote, 'r1')).toEqual({ kind: 'push', expectRev: 6, record: { rolledBack: false, paused: true, override: split, gen: 1, by: 'r1', reason: 'pause' } });
  });

  it('drops a late rollback judged before a resume elsewhere: the new experiment is not touched', () => {
    const base = synced(shared(5, serving, 1));
    const resumedElsewhere = shared(7, serving, 2);
    expect(planSync(rolledBack, base, resumedElsewhere, 'r1', 'error_rate')).toEqual({ kind: 'apply', target: resumedElsewhere, superseded: true });
  });

  it('adopts the fleet when the local edit already equals it (two replicas rolled back at once)', () => {
    const base = synced(shared(5, serving));
    const remote = shared(6, rolledBack);
    expect(planSync(rolledBack, base, remote, 'r1')).toEqual({ kind: 'apply', target: remote, superseded: false });
  });
});

describe('parseSharedControl', () => {
  const good: SharedControl = { rolledBack: true, paused: false, override: split, gen: 2, by: 'r1', reason: 'error_rate' };
  it('round-trips a record', () => {
    expect(parseSharedControl(JSON.stringify(good))).toEqual(good);
  });
  it.each([
    ['not JSON', 'nope'],
    ['a negative generation', JSON.stringify({ ...good, gen: -1 })],
    ['a percent over 100', JSON.stringify({ ...good, override: { challengers: [{ name: 'a', mode: 'canary', percent: 101 }] } })],
    ['an unknown mode', JSON.stringify({ ...good, override: { challengers: [{ name: 'a', mode: 'blue', percent: 1 }] } })],
  ])('rejects %s', (_why, text) => {
    expect(parseSharedControl(text)).toBeNull();
  });
});
