/**
 * How every handler is bundled, as plain esbuild settings with no CDK import: the stack passes them to
 * NodejsFunction and the benchmark passes the same ones to esbuild, so the bundles it measures are the deployed ones.
 */
import { BUNDLED_NATIVE_DIR, nativeBinaryFile } from '../adapters/checksum-native';
import { TOKENIZER_FAMILY_DEFINE } from './tokenizer-family';

/** The handler entry files relative to the project root, one per function kind. */
export const LAMBDA_ENTRY_PATHS = {
  api: 'lambdas/api.ts',
  prefill: 'lambdas/prefill.ts',
  decode: 'lambdas/decode.ts',
} as const;

/**
 * The architecture every function runs on. esbuild's output has none (platform node, target node22): an arm64 build
 * is byte-for-byte an x86_64 one, which the benchmark checks. What differs is the one native module,
 * @node-rs/crc32: it is not bundled, and the functions that checksum KV blobs ship its binary for this
 * architecture beside index.mjs (bundleAssets), which lib/adapters/checksum-native.ts loads at run time.
 */
export const LAMBDA_ARCHITECTURE: LambdaArchitecture = 'arm64';

/** Lambda's names for the two architectures. */
export type LambdaArchitecture = 'arm64' | 'x86_64';

/**
 * The @node-rs/crc32 version whose prebuilt Linux binaries are vendored in data/native/ (the registry's tarballs,
 * as `npm pack` fetches them; scripts/native-crc32.ts refreshes them). It must be the installed package's: the
 * bundling test checks it against package-lock.json, and the tarballs against the lock's integrity.
 */
export const NATIVE_CRC32_VERSION = '1.10.8';

/** The vendored tarball of the prebuilt binary for an architecture, relative to the project root. */
export function nativeCrc32Tarball(architecture: LambdaArchitecture): string {
  return `data/native/node-rs-crc32-linux-${nodeArch(architecture)}-gnu-${NATIVE_CRC32_VERSION}.tgz`;
}

/** The architecture as Node names it (`process.arch`), which the binaries' file names use. */
export function nodeArch(architecture: LambdaArchitecture): 'arm64' | 'x64' {
  return architecture === 'arm64' ? 'arm64' : 'x64';
}

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

export type FunctionKind = keyof typeof LAMBDA_ENTRY_PATHS;

/** What a function's bundle carries: decided at synth time from the deployment, so the rest is left out. */
export interface BundleProfile {
  readonly kind: FunctionKind;
  /** The served model's tokenizer family; undefined bundles them all. */
  readonly tokenizerFamily?: string;
  /** The deployment's KV store (DISAGG_KV_STORE); undefined bundles both. */
  readonly kvStore?: string;
  /** The deployment's generation backend (DISAGG_BACKEND); undefined bundles both. */
  readonly backend?: string;
  /** The function's architecture, which picks the native binary shipped beside the bundle; default LAMBDA_ARCHITECTURE. */
  readonly architecture?: LambdaArchitecture;
}

/**
 * The bundle-time constants (esbuild `define`). lambdas/wiring.ts and the tokenizer adapter compare them with
 * literals around dynamic imports, so esbuild drops what a function never loads: the KV store and backend the
 * deployment does not use, the KV store and backend in the API function (which touches neither), the Lambda
 * client outside the API function, every other family's tokenizer.
 */
export const BUNDLE_DEFINES = {
  tokenizerFamily: TOKENIZER_FAMILY_DEFINE,
  kind: 'process.env.DISAGG_BUNDLE_FUNCTION',
  kvStore: 'process.env.DISAGG_BUNDLE_KV_STORE',
  backend: 'process.env.DISAGG_BUNDLE_BACKEND',
} as const;

export function bundleDefine(profile: BundleProfile): Record<string, string> {
  const define: Record<string, string> = { [BUNDLE_DEFINES.kind]: JSON.stringify(profile.kind) };
  for (const key of ['tokenizerFamily', 'kvStore', 'backend'] as const) {
    const value = profile[key];
    if (value !== undefined) define[BUNDLE_DEFINES[key]] = JSON.stringify(value);
  }
  return define;
}

/** The vocabulary files each family reads (lib/adapters/tokenizer-vocabulary.ts); Llama 2's is in its package. */
const VOCABULARY_FILES: Readonly<Record<string, string>> = {
  llama3: 'llama3.json.br',
  qwen3: 'qwen3.json.br',
  'gpt-oss': 'gpt-oss.json.br',
  mistral: 'mistral.json.br',
};

/** A file copied into the bundle's folder beside index.mjs. */
export interface BundleAsset {
  /** Relative to the project root. */
  readonly from: string;
  /** Relative to the bundle's folder. */
  readonly to: string;
  /** When set, `from` is a gzipped tarball and this file inside it is what `to` gets. */
  readonly member?: string;
}

/**
 * Files a bundle ships beside index.mjs: the served family's vocabulary, in the API function only (the one that
 * counts prompt tokens; it reads the file on first use), and in the functions that checksum KV blobs (prefill
 * encodes them, decode verifies them) the native CRC-32C binary for the function's architecture with its licence.
 * A bundle of every family ships every vocabulary.
 */
export function bundleAssets(profile: BundleProfile): BundleAsset[] {
  if (profile.kind !== 'api') return nativeCrc32Assets(profile.architecture ?? LAMBDA_ARCHITECTURE);
  const families = profile.tokenizerFamily === undefined ? Object.keys(VOCABULARY_FILES) : [profile.tokenizerFamily];
  return families
    .map((family) => VOCABULARY_FILES[family])
    .filter((file): file is string => file !== undefined)
    .map((file) => ({ from: `data/tokenizers/${file}`, to: `tokenizers/${file}` }));
}

/**
 * The prebuilt binary, taken out of the registry's tarball vendored in the repository (so synth needs no network
 * and no npm install for another platform), under the name lib/adapters/checksum-native.ts looks for.
 */
function nativeCrc32Assets(architecture: LambdaArchitecture): BundleAsset[] {
  const file = nativeBinaryFile(nodeArch(architecture))!;
  return [
    { from: nativeCrc32Tarball(architecture), member: `package/${file}`, to: `${BUNDLED_NATIVE_DIR}/${file}` },
    { from: 'data/native/LICENSE', to: `${BUNDLED_NATIVE_DIR}/LICENSE` },
  ];
}

/**
 * Shell commands that copy the assets (NodejsFunction's afterBundling hook runs them on the synth machine; the
 * benchmark runs the same). A tarball's member is extracted with `tar`, which Linux, macOS and Windows ship.
 */
export function copyAssetCommands(profile: BundleProfile, inputDir: string, outputDir: string): string[] {
  return bundleAssets(profile).map(({ from, to, member }) => {
    const mkdir = `mkdir -p "${outputDir}/${dirnameOf(to)}"`;
    return member === undefined
      ? `${mkdir} && cp "${inputDir}/${from}" "${outputDir}/${to}"`
      : `${mkdir} && tar -xzOf "${inputDir}/${from}" "${member}" > "${outputDir}/${to}"`;
  });
}

function dirnameOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash === -1 ? '.' : path.slice(0, slash);
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
  readonly define: Record<string, string>;
  readonly external: string[];
}

/** `root` is the project root; the entry is the profile's kind's. */
export function handlerBuildOptions(root: string, profile: BundleProfile): HandlerBuildOptions {
  const define = bundleDefine(profile);
  return {
    entryPoints: [`${root.replace(/\/$/, '')}/${LAMBDA_ENTRY_PATHS[profile.kind]}`],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: ESBUILD_TARGET,
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    mainFields: [...MAIN_FIELDS],
    banner: { js: REQUIRE_SHIM },
    define,
    // The AWS SDK v3 and Powertools are bundled, not layered: LocalStack's free tier does not apply layers.
    external: [],
  };
}
