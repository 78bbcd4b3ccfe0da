/** Recipes bundled as text (esbuild's text loader, build.mjs). */
declare module "*.yaml" {
  const text: string;
  export default text;
}
