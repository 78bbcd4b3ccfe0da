import { defineConfig } from "tsup";
import { baseTsup } from "../../tooling/tsup.base.ts";

export default defineConfig([
  baseTsup({ index: "src/index.ts" }),
  // The CLI is ESM only, with a shebang; it must not wipe the library build.
  { ...baseTsup({ cli: "src/cli.ts" }), format: ["esm"], dts: false, clean: false, banner: { js: "#!/usr/bin/env node" } },
]);
