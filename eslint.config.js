// ESLint flat config: typed-light TypeScript rules plus the import zones that keep the request path lean.
import tseslint from 'typescript-eslint';

/**
 * Layers on the request path: they may never import the control side. This rule flags direct imports in the editor;
 * `npm run lint:imports` (.dependency-cruiser.cjs) checks every layer and chains of imports (docs/design.md, "Layers").
 */
const hotPathLayers = ['src/proxy/**', 'src/decision/**', 'src/shadow/**', 'src/record/**'];
const offPathPatterns = ['**/analysis/**', '**/coordination/**', '**/flags/**', '**/control/**', '**/admin/**', '**/simulate/**', '**/cli/**'];

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
          message: 'The request path (proxy, decision, shadow, record) must not import analysis, coordination, flags, control, admin, simulate or cli code.',
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
