/** dynalite ships no types: the one function this tier calls, as its README documents it. */
declare module 'dynalite' {
  import type { Server } from 'node:http';
  interface DynaliteOptions {
    readonly createTableMs?: number;
    readonly deleteTableMs?: number;
    readonly updateTableMs?: number;
    /** A LevelDB directory; omitted keeps everything in memory. */
    readonly path?: string;
  }
  export default function dynalite(options?: DynaliteOptions): Server;
}
