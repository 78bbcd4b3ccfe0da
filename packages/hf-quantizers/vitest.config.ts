import { baseVitest } from "../../tooling/vitest.base.ts";

export default baseVitest;
