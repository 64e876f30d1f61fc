import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ELF_MACHINE, elfMachine } from './elf';
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
      // The key reader parses two headers and logs nothing: no Powertools, and a few hundred bytes.
      if (code.includes('usageIdentifierKey')) {
        expect(code.length).toBeLessThan(4096);
        continue;
      }
      // Under 1 MB each: no vocabulary inlined, zod without its locales, only the clients the function uses.
      expect(statSync(join(dir, 'index.mjs')).size).toBeLessThan(1_000_000);
      // What went in, by the source map's input paths (the map carries no sources).
      const sources = (JSON.parse(readFileSync(join(dir, 'index.mjs.map'), 'utf8')) as { sources: string[] }).sources;
      expect(sources.filter((p) => /zod\/v4\/locales\/(?!en\.js)/.test(p))).toEqual([]);
      // The localstack profile deploys KV on S3: the Redis client is in no bundle.
      expect(sources.filter((p) => p.includes('node_modules/ioredis/'))).toEqual([]);
      const isApi = sources.some((p) => p.endsWith('lambdas/api.ts'));
      // Only the API function invokes prefill and counts tokens: the Lambda client and the vocabulary are its alone.
      expect(sources.some((p) => p.includes('@aws-sdk/client-lambda/'))).toBe(isApi);
      expect(sources.some((p) => p.includes('@aws-sdk/client-s3/'))).toBe(!isApi);
      expect(existsSync(join(dir, 'tokenizers', 'llama3.json.br'))).toBe(isApi);
      expect(existsSync(join(dir, 'tokenizers'))).toBe(isApi);
      // Prefill and decode checksum KV blobs: each ships the native CRC-32C built for the functions' arm64,
      // with its licence; the API function checksums nothing and ships none.
      const native = join(dir, 'native', 'crc32.linux-arm64-gnu.node');
      expect(existsSync(join(dir, 'native'))).toBe(!isApi);
      if (!isApi) {
        expect(elfMachine(readFileSync(native))).toBe(ELF_MACHINE.arm64);
        expect(readFileSync(join(dir, 'native', 'LICENSE'), 'utf8')).toMatch(/^MIT License/);
        expect(readdirSync(join(dir, 'native')).sort()).toEqual(['LICENSE', 'crc32.linux-arm64-gnu.node']);
      }
      // Powertools is bundled too (its logger reads the service name from this variable).
      expect(code).toContain('POWERTOOLS_SERVICE_NAME');
    }
  }, 180_000);
});
