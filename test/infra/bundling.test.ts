import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOCALSTACK, synth } from './synth';

describe('handler bundling', () => {
  it('bundles every handler with local esbuild (no Docker) into minified ESM with a require shim and source map', () => {
    const { app } = synth(LOCALSTACK, { bundle: true });
    const outdir = app.synth().directory;
    const bundles = readdirSync(outdir)
      .filter((name) => name.startsWith('asset.'))
      .map((name) => join(outdir, name))
      .filter((dir) => existsSync(join(dir, 'index.mjs')));
    // api, prefill, decode and the key reader (the API's two handlers share one bundle).
    expect(bundles).toHaveLength(4);
    for (const dir of bundles) {
      const code = readFileSync(join(dir, 'index.mjs'), 'utf8');
      expect(code.startsWith("import { createRequire as __disaggCreateRequire } from 'node:module';")).toBe(true);
      expect(existsSync(join(dir, 'index.mjs.map'))).toBe(true);
      // The SDK is bundled, not left to the runtime: no SDK client is imported from outside the bundle.
      expect(code).not.toMatch(/from\s*["']@aws-sdk\//);
      expect(code).not.toMatch(/require\(["']@aws-sdk\/client-/);
      // The only SDK requires left are the optional SigV4a signers the SDK loads inside try/catch.
      const external = new Set([...code.matchAll(/require\(["'](@aws-sdk\/[^"']+)["']\)/g)].map((m) => m[1]));
      expect([...external].every((name) => /^@aws-sdk\/signature-v4(a|-crt)$/.test(name ?? ''))).toBe(true);
      // Only llama-3.3-70b's tokenizer vocabulary is bundled (the define): about 5 MB, where every family is over 15 MB.
      expect(code.length).toBeLessThan(8 * 1024 * 1024);
      // The key reader parses two headers and logs nothing: no Powertools, and a few hundred bytes.
      if (code.includes('usageIdentifierKey')) {
        expect(code.length).toBeLessThan(4096);
        continue;
      }
      // Powertools is bundled too (its logger reads the service name from this variable).
      expect(code).toContain('POWERTOOLS_SERVICE_NAME');
    }
  }, 180_000);
});
