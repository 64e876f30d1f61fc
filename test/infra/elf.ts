/**
 * The machine a shared object is built for, read from its ELF header (the System V ABI's e_machine): what a
 * bundle's native binary must match on the function's architecture.
 */

/** e_machine values: AArch64 (arm64) and AMD x86-64. */
export const ELF_MACHINE = { arm64: 0xb7, x64: 0x3e } as const;

/** e_machine of a 64-bit little-endian ELF file, or null when `bytes` is not one. */
export function elfMachine(bytes: Uint8Array): number | null {
  const magic = bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46; // "\x7fELF"
  // EI_CLASS 2 is 64-bit, EI_DATA 1 little-endian; e_machine is the u16 at offset 18.
  if (!magic || bytes[4] !== 2 || bytes[5] !== 1 || bytes.length < 20) return null;
  return bytes[18]! | (bytes[19]! << 8);
}
