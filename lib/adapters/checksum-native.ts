/**
 * The checksum port (lib/core/handoff/checksum.ts) on native CRC-32C: `@node-rs/crc32`'s prebuilt binary.
 *
 * Where it comes from, first found first:
 * - beside the bundle: a Lambda bundle that checksums KV blobs (prefill, decode) ships the binary for its
 *   function's architecture as native/crc32.linux-<arch>-gnu.node beside index.mjs, taken from the registry's
 *   tarball vendored in data/native/ (lib/infra/bundling-options.ts), because a bundle has no node_modules;
 * - the `@node-rs/crc32` package, whose binaries (x64 and arm64, glibc and musl) npm installs for the machine
 *   it runs on as optional dependencies: source runs, the embedded server, the tests.
 * The file beside a bundle is picked by `process.arch`. Where none loads (another platform, a musl host with
 * the glibc file, a bundle that left it out), the JavaScript reference is used instead, with one log line,
 * so the pipeline runs everywhere and is only faster where it can be.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { crc32c as javascriptCrc32c, type Crc32c } from '../core/handoff/checksum';

export interface ChecksumImplementation {
  readonly crc32c: Crc32c;
  /** Which one loaded, for logs and the benchmark. */
  readonly name: 'native' | 'javascript';
  /** Where the native binary was loaded from; null for the JavaScript one. */
  readonly from: 'bundle' | 'package' | null;
}

interface NodeRsCrc32 {
  crc32c(input: Uint8Array, initialState?: number): number;
}

/** The folder a bundle ships the binary in, beside index.mjs. */
export const BUNDLED_NATIVE_DIR = 'native';

/**
 * The prebuilt binary's file name for a Linux (glibc) architecture in Node's naming (`process.arch`), as
 * @node-rs/crc32 names it; null for an architecture no bundle ships a binary for.
 */
export function nativeBinaryFile(arch: string): string | null {
  return arch === 'arm64' || arch === 'x64' ? `crc32.linux-${arch}-gnu.node` : null;
}

const nodeRequire = createRequire(import.meta.url);
let loaded: ChecksumImplementation | undefined;

/** The native CRC-32C and where it came from, or the reasons none loaded here. */
export function loadNativeCrc32c(): { crc32c: Crc32c; from: 'bundle' | 'package' } | { failures: string[] } {
  const failures: string[] = [];
  const file = process.platform === 'linux' ? nativeBinaryFile(process.arch) : null;
  const attempts: { from: 'bundle' | 'package'; id: string }[] = [];
  if (file !== null) {
    const beside = fileURLToPath(new URL(`./${BUNDLED_NATIVE_DIR}/${file}`, import.meta.url));
    // Only a bundle has the folder; a source run goes straight to the package.
    if (existsSync(beside)) attempts.push({ from: 'bundle', id: beside });
  }
  attempts.push({ from: 'package', id: '@node-rs/crc32' });
  for (const { from, id } of attempts) {
    try {
      // A runtime require, not an import: bundlers leave it alone, and a missing binary is a fallback, not a crash.
      const native = nodeRequire(id) as NodeRsCrc32;
      // The binding takes any Uint8Array (a Buffer or a view); checked once so a mismatched build is refused.
      if (native.crc32c(new TextEncoder().encode('123456789')) !== 0xe3069283) {
        failures.push(`${id}: wrong check value`);
        continue;
      }
      return { crc32c: (bytes, seed = 0) => native.crc32c(bytes, seed), from };
    } catch (err) {
      failures.push(`${id}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    }
  }
  return { failures };
}

/** The native CRC-32C, or null when its binary does not load here. */
export function nativeCrc32c(): Crc32c | null {
  const native = loadNativeCrc32c();
  return 'crc32c' in native ? native.crc32c : null;
}

/**
 * The fastest CRC-32C that loads here (native, else the JavaScript reference), loaded once per process. The
 * fallback is said once, through `warn` (default the console), naming why each binary did not load.
 */
export function fastestCrc32c(warn: (line: string) => void = console.warn): ChecksumImplementation {
  if (!loaded) {
    const native = loadNativeCrc32c();
    if ('crc32c' in native) {
      loaded = { crc32c: native.crc32c, name: 'native', from: native.from };
    } else {
      loaded = { crc32c: javascriptCrc32c, name: 'javascript', from: null };
      warn(
        `checksum: native CRC-32C did not load on ${process.platform} ${process.arch} ` +
          `(${native.failures.join('; ')}); KV blobs are checksummed by the slower JavaScript CRC-32C`,
      );
    }
  }
  return loaded;
}
