/**
 * Refreshes data/native/: the registry's tarballs of @node-rs/crc32's prebuilt Linux (glibc) binaries for arm64
 * and x64, at the installed @node-rs/crc32's version, and its licence. The Lambda bundles that checksum KV blobs
 * take the binary for their architecture out of the tarball at synth time (lib/infra/bundling-options.ts), so
 * synth needs no network and no npm install for another platform. Run after upgrading @node-rs/crc32:
 *
 *   node --import tsx scripts/native-crc32.ts
 *
 * then set NATIVE_CRC32_VERSION in lib/infra/bundling-options.ts to the version it prints.
 * test/infra/native-crc32.test.ts checks the tarballs against package-lock.json's integrity for that version.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const dir = `${root}data/native`;
const { version } = JSON.parse(readFileSync(`${root}node_modules/@node-rs/crc32/package.json`, 'utf8')) as {
  version: string;
};
for (const file of readdirSync(dir).filter((f) => f.endsWith('.tgz'))) rmSync(`${dir}/${file}`);
for (const arch of ['arm64', 'x64']) {
  // npm pack fetches the registry's tarball as published; it installs nothing, so the platform does not matter.
  const name = `@node-rs/crc32-linux-${arch}-gnu@${version}`;
  execFileSync('npm', ['pack', name, '--pack-destination', dir, '--silent'], { stdio: 'inherit' });
}
copyFileSync(`${root}node_modules/@node-rs/crc32/LICENSE`, `${dir}/LICENSE`);
process.stdout.write(`data/native: @node-rs/crc32 ${version}; NATIVE_CRC32_VERSION must be '${version}'\n`);
