// Types for the part of js-yaml 3 that scripts/check-envoy.ts uses. js-yaml 3 ships no types,
// and @types/js-yaml describes version 4, whose API differs.
declare module 'js-yaml' {
  /** Parses one YAML document with the default safe schema. Throws on invalid YAML. */
  function safeLoad(text: string): unknown;
  const yaml: { safeLoad: typeof safeLoad };
  export default yaml;
}
