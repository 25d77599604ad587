// ESLint flat config: typescript-eslint's recommended rules over the TypeScript sources, tests and
// the plain JavaScript the server ships (demo pages) or runs (bin/, scripts/).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'models/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // `_`-prefixed names mark parameters a callback signature requires but this body ignores
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  { files: ['server/**/demo/**/*.js'], languageOptions: { globals: globals.browser } },
  { files: ['bin/**/*.js', 'scripts/**/*.mjs', '*.js'], languageOptions: { globals: globals.node } },
  { files: ['**/*.cjs'], languageOptions: { sourceType: 'commonjs', globals: globals.node } },
  {
    files: ['test/**/*.ts'],
    // tests read untyped JSON off the wire and demo-page state out of Chromium, and check it with expect()
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
