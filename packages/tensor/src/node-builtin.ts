interface NodeProcess {
  readonly getBuiltinModule?: (id: string) => unknown;
}

const nodeProcess = (): NodeProcess | undefined => (globalThis as { process?: NodeProcess }).process;

/** True where Node's built-in modules can be reached (`process.getBuiltinModule`, Node ≥ 20.16). */
export const hasNodeBuiltins = (): boolean => typeof nodeProcess()?.getBuiltinModule === "function";

/**
 * A Node built-in module looked up at run time instead of imported, so that core entries bundle for browsers
 * (a static `import "node:fs"` fails a `--platform=browser` bundle). Outside Node every member is a function that
 * throws, naming the module: only the Node-only paths (files, the native addon, the worker pool) ever call them.
 */
export const nodeBuiltin = <T extends object>(id: string): T => {
  const proc = nodeProcess();
  const mod = typeof proc?.getBuiltinModule === "function" ? proc.getBuiltinModule(id) : undefined;
  if (mod !== undefined) return mod as T;
  const missing = (_target: object, key: string | symbol): unknown =>
    typeof key === "symbol"
      ? undefined
      : () => {
          throw new Error(`${id} (${key}) is only available in Node.js`);
        };
  return new Proxy({}, { get: missing }) as T;
};
