// The error registry: one place, stable codes equal to their export names, every code documented in README.
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import * as errors from '../../src/errors.js';

it('exports only SWY_ERR_* constructors whose code equals their name, each documented in README', () => {
  const readme = readFileSync('README.md', 'utf8');
  const entries = Object.entries(errors);
  expect(entries.length).toBeGreaterThanOrEqual(20);
  for (const [name, ErrorClass] of entries) {
    expect(name).toMatch(/^SWY_ERR_[A-Z_]+$/);
    const instance = new (ErrorClass as new (...args: unknown[]) => Error & { code: string; statusCode: number })('a', 'b');
    expect(instance.code).toBe(name);
    expect(instance.statusCode).toBeGreaterThanOrEqual(400);
    expect(readme, `${name} is missing from README's error table`).toContain(`\`${name}\``);
  }
});
