// @ts-check
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'cdk.out/', 'coverage/', 'bench/results*', 'docs/*.html'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': [
        'error',
        {
          // `z` is a namespace object: used as a value it keeps all of zod, its 0.36 MB of locales included, in a
          // Lambda bundle; `import * as z` lets esbuild keep only what is used.
          selector: "ImportDeclaration[source.value=/^zod/][importKind='value'] > ImportSpecifier[imported.name='z']",
          message: "Import zod as `import * as z from 'zod'`: `import { z }` bundles every locale.",
        },
      ],
    },
  },
  {
    // Layering from the design: the pure core imports nothing outside itself.
    files: ['lib/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/adapters/**', '**/local/**', '**/infra/**', '**/lambdas/**', '**/bin/**'],
              message: 'lib/core imports nothing outside lib/core.',
            },
            {
              group: ['aws-cdk-lib', 'aws-cdk-lib/*', 'constructs', '@aws-sdk/*', 'node:*'],
              message: 'lib/core is pure logic, no I/O or SDKs.',
            },
          ],
        },
      ],
    },
  },
  {
    // Runtime code never imports the CDK.
    files: ['lib/adapters/**/*.ts', 'lib/local/**/*.ts', 'lambdas/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['aws-cdk-lib', 'aws-cdk-lib/*', 'constructs', '**/infra/**'],
              message: 'Runtime code never imports the CDK or lib/infra.',
            },
          ],
        },
      ],
    },
  },
);
