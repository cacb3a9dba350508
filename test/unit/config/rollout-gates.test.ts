// Policy validation of approval gates: rollout.approve and rollout.confirm name steps of the rollout, with errors naming the field.
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadPolicy, validatePolicyText } from '../../../src/config/load.js';

const policy = (rollout: Record<string, unknown>) =>
  stringify({
    routes: [{
      name: 'iris', match: { pathPrefix: '/v1/models/iris' }, champion: { name: 'v1', url: 'http://127.0.0.1:9001' },
      challengers: [{ name: 'v2', url: 'http://127.0.0.1:9002', mode: 'canary' }], rollout: { steps: [10, 50, 100], ...rollout },
    }],
  });

const problems = (rollout: Record<string, unknown>) => validatePolicyText('policy.yaml', policy(rollout)).problems.map((p) => `${p.path}: ${p.message}`);

describe('rollout approval gates in the policy', () => {
  it('accepts steps and "promote", with confirm defaults', () => {
    const result = validatePolicyText('policy.yaml', policy({ approve: [50, 'promote'], confirm: { url: 'https://ci.example.com/confirm', before: [100] } }));
    expect(result.problems).toEqual([]);
    expect(result.policy!.routes[0]!.rollout).toMatchObject({ approve: [50, 'promote'], confirm: { url: 'https://ci.example.com/confirm', before: [100], interval: 10_000, timeout: 5_000 } });
    expect(validatePolicyText('policy.yaml', policy({})).policy!.routes[0]!.rollout!.approve).toEqual([]);
  });

  it('loads examples/iris-approval.yaml', async () => {
    const { policy } = await loadPolicy('examples/iris-approval.yaml');
    expect(policy.routes[0]!.rollout).toMatchObject({ approve: [50, 'promote'], confirm: { before: [100], interval: 30_000, timeout: 5_000 } });
  });

  const cases: { name: string; rollout: Record<string, unknown>; problem: RegExp }[] = [
    { name: 'an approve value that is not a step', rollout: { approve: [50, 30] }, problem: /^routes\[0\]\.rollout\.approve\[1\]: 30 is not one of the steps \(10, 50, 100\)/ },
    { name: 'a confirm step that is not a step', rollout: { confirm: { url: 'http://127.0.0.1:1/c', before: [75] } }, problem: /^routes\[0\]\.rollout\.confirm\.before\[0\]: 75 is not one of the steps/ },
    { name: 'a step listed twice', rollout: { approve: [50, 50] }, problem: /^routes\[0\]\.rollout\.approve\[1\]: 50 is listed twice/ },
    { name: '"promote" when the rollout does not promote', rollout: { promote: false, approve: ['promote'] }, problem: /^routes\[0\]\.rollout\.approve\[0\]: rollout\.promote is false/ },
    { name: 'a word other than "promote"', rollout: { approve: ['later'] }, problem: /^routes\[0\]\.rollout\.approve\[0\]: must be one of the rollout steps/ },
    { name: 'a confirm URL that is not http(s)', rollout: { confirm: { url: 'ftp://x/confirm', before: [50] } }, problem: /^routes\[0\]\.rollout\.confirm\.url: protocol ftp: is not allowed/ },
    { name: 'a confirm without steps', rollout: { confirm: { url: 'http://127.0.0.1:1/c', before: [] } }, problem: /^routes\[0\]\.rollout\.confirm\.before: name at least one step/ },
    { name: 'a confirm interval that is not a duration', rollout: { confirm: { url: 'http://127.0.0.1:1/c', before: [50], interval: 'soon' } }, problem: /^routes\[0\]\.rollout\.confirm\.interval: must be a duration/ },
  ];
  for (const c of cases) {
    it(`refuses ${c.name}, naming the field`, () => {
      const found = problems(c.rollout);
      expect(found.some((p) => c.problem.test(p)), found.join('\n')).toBe(true);
    });
  }
});
