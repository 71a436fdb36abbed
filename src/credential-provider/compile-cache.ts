// V8's compile cache (module.enableCompileCache, Node 22.1+) for what a cold start loads: the cloud clients
// (@alicloud/pop-core, @alicloud/credentials and their dependencies, about 90 CommonJS files) are compiled once per
// node and version, not once per pull. Turned on only on the way to a cloud call (an answer from the disk cache
// loads nothing more), in a directory inside the plugin's own cache directory (0700, checked), never in a shared
// temporary directory whose cached code another user could plant. On Node 20 there is no such API: nothing happens.
import * as nodeModule from 'node:module';

type EnableCompileCache = (dir: string) => unknown;

/** `dir` is asked for (and made) only where Node has the API. */
export function enableCompileCache(dir: () => string | undefined): void {
  const enable = (nodeModule as unknown as { enableCompileCache?: EnableCompileCache }).enableCompileCache;
  if (typeof enable !== 'function') return;
  const where = dir();
  if (where === undefined) return;
  try {
    enable(where);
  } catch {
    // Only an optimisation: the pull goes on without it.
  }
}
