/**
 * The checksum port (lib/core/handoff/checksum.ts) on native CRC-32C: `@node-rs/crc32`, whose prebuilt
 * binaries (x64 and arm64, glibc and musl) install from the npm registry as optional dependencies.
 * Where no binary loads (another platform, or a bundle that left the package out), the JavaScript
 * reference is used instead, so the pipeline runs everywhere and is only faster where it can be.
 */
import { createRequire } from 'node:module';
import { crc32c as javascriptCrc32c, type Crc32c } from '../core/handoff/checksum';

export interface ChecksumImplementation {
  readonly crc32c: Crc32c;
  /** Which one loaded, for logs and the benchmark. */
  readonly name: 'native' | 'javascript';
}

interface NodeRsCrc32 {
  crc32c(input: Uint8Array, initialState?: number): number;
}

let loaded: ChecksumImplementation | undefined;

/** The native CRC-32C, or null when its binary does not load here. */
export function nativeCrc32c(): Crc32c | null {
  try {
    // A runtime require, not an import: bundlers leave it alone, and a missing binary is a fallback, not a crash.
    const native = createRequire(import.meta.url)('@node-rs/crc32') as NodeRsCrc32;
    // The binding takes any Uint8Array (a Buffer or a view); checked once so a mismatched build is refused.
    if (native.crc32c(new TextEncoder().encode('123456789')) !== 0xe3069283) return null;
    return (bytes, seed = 0) => native.crc32c(bytes, seed);
  } catch {
    return null;
  }
}

/** The fastest CRC-32C that loads here (native, else the JavaScript reference), loaded once per process. */
export function fastestCrc32c(): ChecksumImplementation {
  if (!loaded) {
    const native = nativeCrc32c();
    loaded = native ? { crc32c: native, name: 'native' } : { crc32c: javascriptCrc32c, name: 'javascript' };
  }
  return loaded;
}
