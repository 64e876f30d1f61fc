/**
 * Imported first by every handler entry. An ESM bundle has no `require`, yet bundled CommonJS
 * dependencies (the AWS SDK's and Powertools' CommonJS builds) call it for Node built-ins; esbuild's shim
 * looks for a global one, so this module provides it before any of them is evaluated.
 */
import { createRequire } from 'node:module';

// A CommonJS bundle has its own `require` (and no import.meta.url): nothing to do there.
if (typeof require === 'undefined') {
  (globalThis as { require?: NodeJS.Require }).require = createRequire(import.meta.url);
}
