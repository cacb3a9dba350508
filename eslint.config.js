// ESLint flat config: typed-light TypeScript rules plus the import zones that keep the request path lean.
import tseslint from 'typescript-eslint';

/** Layers on the request path: they may never reach analysis, control or admin code. */
const hotPathLayers = ['src/proxy/**', 'src/decision/**', 'src/shadow/**', 'src/record/**'];
const offPathPatterns = ['**/analysis/**', '**/control/**', '**/admin/**', '**/cli/**', '**/tracing/**'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.tools/**', 'helm/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-restricted-syntax': ['error', {
        selector: "BinaryExpression[operator='instanceof'][right.name=/Error$/][right.name!='Error'][right.name!='TypeError'][right.name!='RangeError']",
        message: 'Switch on err.code, not instanceof (errors may come from duplicate module copies).',
      }],
    },
  },
  {
    files: hotPathLayers,
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{
          group: offPathPatterns,
          message: 'The request path (proxy, decision, shadow, record) must not import analysis, control, admin, cli or tracing code (it publishes to diagnostics channels instead).',
        }],
      }],
    },
  },
  {
    files: ['src/**'],
    ignores: ['src/cli/**', 'src/demo/**'],
    rules: { 'no-console': 'error' },
  },
);
