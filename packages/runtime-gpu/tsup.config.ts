import { defineConfig } from "tsup";
import { baseTsup } from "../../tooling/tsup.base.ts";

export default defineConfig({ ...baseTsup({ index: "src/index.ts", node: "src/node.ts" }), external: ["webgpu"] });
