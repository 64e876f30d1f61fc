/**
 * How every handler is bundled, as plain esbuild settings with no CDK import: the stack passes them to
 * NodejsFunction and the benchmark passes the same ones to esbuild, so the bundles it measures are the deployed ones.
 */
import { TOKENIZER_FAMILY_DEFINE } from './tokenizer-family';

/** The handler entry files relative to the project root, one per function kind. */
export const LAMBDA_ENTRY_PATHS = {
  api: 'lambdas/api.ts',
  prefill: 'lambdas/prefill.ts',
  decode: 'lambdas/decode.ts',
} as const;

/** Moves together with the Lambda runtime (Node.js 22). */
export const ESBUILD_TARGET = 'node22';

/**
 * ESM, not CJS: the runtime code uses `import.meta.url` (the tokenizer adapter), which CJS output would
 * break. Bundled CommonJS dependencies still call `require`, which ESM lacks, so the banner defines one.
 */
export const REQUIRE_SHIM =
  "import { createRequire as __disaggCreateRequire } from 'node:module'; const require = __disaggCreateRequire(import.meta.url);";

/** Prefer the ESM builds of dependencies (the AWS SDK ships both). */
export const MAIN_FIELDS: readonly string[] = ['module', 'main'];

/** The bundle-time constants: the one tokenizer family a bundle carries; undefined bundles them all. */
export function bundleDefine(tokenizerFamily: string | undefined): Record<string, string> | undefined {
  return tokenizerFamily ? { [TOKENIZER_FAMILY_DEFINE]: JSON.stringify(tokenizerFamily) } : undefined;
}

/** The esbuild options NodejsFunction derives from the bundling props in disagg-function.ts, for a direct build. */
export interface HandlerBuildOptions {
  readonly entryPoints: string[];
  readonly bundle: true;
  readonly platform: 'node';
  readonly format: 'esm';
  readonly target: string;
  readonly minify: true;
  readonly sourcemap: true;
  readonly sourcesContent: false;
  readonly mainFields: string[];
  readonly banner: { js: string };
  readonly define?: Record<string, string>;
  readonly external: string[];
}

export function handlerBuildOptions(entry: string, tokenizerFamily: string | undefined): HandlerBuildOptions {
  const define = bundleDefine(tokenizerFamily);
  return {
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: ESBUILD_TARGET,
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    mainFields: [...MAIN_FIELDS],
    banner: { js: REQUIRE_SHIM },
    ...(define ? { define } : {}),
    // The AWS SDK v3 and Powertools are bundled, not layered: LocalStack's free tier does not apply layers.
    external: [],
  };
}
