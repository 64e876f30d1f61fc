/**
 * The native CRC-32C shipped in Lambda bundles: the vendored tarballs are the registry's (package-lock.json's
 * integrity) for the installed @node-rs/crc32, a bundle for x86_64 or arm64 gets the binary for that machine,
 * the loader in a bundle (no node_modules) loads the one for process.arch and computes the reference CRC-32C,
 * and a binary for another machine falls back to the JavaScript one with a log line.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { crc32c } from '../../lib/core/handoff/checksum';
import {
  copyAssetCommands,
  handlerBuildOptions,
  nativeCrc32Tarball,
  NATIVE_CRC32_VERSION,
  type LambdaArchitecture,
} from '../../lib/infra/bundling-options';
import { ELF_MACHINE, elfMachine } from './elf';

const root = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { version?: string; integrity?: string }>;
};
const installed = JSON.parse(readFileSync(join(root, 'node_modules/@node-rs/crc32/package.json'), 'utf8')) as {
  version: string;
};

const out = mkdtempSync(join(tmpdir(), 'disagg-native-crc32-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

/**
 * The checksum adapter bundled with the handlers' options, with the prefill function's assets for an
 * architecture beside it, in a folder with no node_modules above it (as in Lambda's /var/task).
 */
async function bundleFor(architecture: LambdaArchitecture, name: string = architecture): Promise<string> {
  const dir = join(out, name);
  const profile = { kind: 'prefill', architecture } as const;
  await build({
    ...handlerBuildOptions(root, profile),
    entryPoints: [join(root, 'lib/adapters/checksum-native.ts')],
    outfile: join(dir, 'index.mjs'),
    logLevel: 'error',
  });
  for (const command of copyAssetCommands(profile, root, dir)) {
    const res = spawnSync('sh', ['-c', command], { encoding: 'utf8' });
    expect(res.status, `${command}: ${res.stderr}`).toBe(0);
  }
  return dir;
}

/** Loads the bundle's checksum in a fresh process and returns what it reports over `file`'s bytes. */
function runBundle(dir: string, file: string): { name: string; from: string | null; crc: number; warned: string[] } {
  const script =
    "const m = await import('./index.mjs'); const warned = [];" +
    'const c = m.fastestCrc32c((line) => warned.push(line));' +
    "const { readFileSync } = await import('node:fs');" +
    `console.log(JSON.stringify({ name: c.name, from: c.from, crc: c.crc32c(readFileSync(${JSON.stringify(file)})), warned }));`;
  const res = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: dir,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '' },
  });
  expect(res.status, res.stderr).toBe(0);
  return JSON.parse(res.stdout) as { name: string; from: string | null; crc: number; warned: string[] };
}

describe('the vendored @node-rs/crc32 binaries', () => {
  it('are for the installed package version, as locked', () => {
    expect(NATIVE_CRC32_VERSION).toBe(installed.version);
    expect(lock.packages['node_modules/@node-rs/crc32']?.version).toBe(NATIVE_CRC32_VERSION);
  });

  it.each(['arm64', 'x86_64'] as const)('%s: the tarball is the registry one package-lock.json names', (arch) => {
    const pkg = `node_modules/@node-rs/crc32-linux-${arch === 'arm64' ? 'arm64' : 'x64'}-gnu`;
    const locked = lock.packages[pkg];
    expect(locked?.version).toBe(NATIVE_CRC32_VERSION);
    const digest = createHash('sha512')
      .update(readFileSync(join(root, nativeCrc32Tarball(arch))))
      .digest('base64');
    expect(`sha512-${digest}`).toBe(locked?.integrity);
  });

  it('ship with the package licence', () => {
    expect(readFileSync(join(root, 'data/native/LICENSE'), 'utf8')).toBe(
      readFileSync(join(root, 'node_modules/@node-rs/crc32/LICENSE'), 'utf8'),
    );
  });
});

describe('a bundle with the native CRC-32C beside it', () => {
  const sample = join(out, 'sample.bin');
  writeFileSync(sample, randomBytes(1 << 20));
  const expected = crc32c(readFileSync(sample));

  it('x86_64: holds an x86-64 binary, which loads from beside the bundle and equals the JavaScript reference', async () => {
    const dir = await bundleFor('x86_64');
    expect(elfMachine(readFileSync(join(dir, 'native/crc32.linux-x64-gnu.node')))).toBe(ELF_MACHINE.x64);
    if (process.platform !== 'linux' || process.arch !== 'x64') {
      console.warn(`native-crc32: not loading the x86-64 binary on ${process.platform} ${process.arch}`);
      return;
    }
    expect(runBundle(dir, sample)).toEqual({ name: 'native', from: 'bundle', crc: expected, warned: [] });
  }, 60_000);

  it('arm64: holds an AArch64 binary; on another machine it falls back to the JavaScript CRC with one log line', async () => {
    const dir = await bundleFor('arm64');
    expect(elfMachine(readFileSync(join(dir, 'native/crc32.linux-arm64-gnu.node')))).toBe(ELF_MACHINE.arm64);
    const got = runBundle(dir, sample);
    expect(got.crc).toBe(expected);
    if (process.platform === 'linux' && process.arch === 'arm64') {
      expect(got).toMatchObject({ name: 'native', from: 'bundle', warned: [] });
      return;
    }
    // Here the bundle has no binary for this machine (its file is named for arm64) and no node_modules.
    expect(got).toMatchObject({ name: 'javascript', from: null });
    expect(got.warned).toHaveLength(1);
    expect(got.warned[0]).toMatch(/^checksum: native CRC-32C did not load on .*@node-rs\/crc32/);
  }, 60_000);

  it('a binary that does not load (the other machine build under this one name) falls back, naming the file', async () => {
    const other = process.arch === 'arm64' ? 'x86_64' : 'arm64';
    const dir = await bundleFor(other, 'renamed');
    const otherFile = `native/crc32.linux-${other === 'arm64' ? 'arm64' : 'x64'}-gnu.node`;
    const mine = `native/crc32.linux-${process.arch}-gnu.node`;
    cpSync(join(dir, otherFile), join(dir, mine));
    const got = runBundle(dir, sample);
    expect(got).toMatchObject({ name: 'javascript', from: null, crc: expected });
    expect(got.warned).toHaveLength(1);
    expect(got.warned[0]).toContain(`${mine}: `);
  }, 60_000);
});
