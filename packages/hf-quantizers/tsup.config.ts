import { defineConfig } from "tsup";
import { baseTsup } from "../../tooling/tsup.base.ts";

export default defineConfig(baseTsup());
