// Jest runs the TypeScript sources as native ES modules (the same module semantics the server
// runs with under Node 24), transformed by SWC. Start it through `npm test`, which passes
// --experimental-vm-modules and --no-node-snapshot (needed by isolated-vm).
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2023' },
        module: { type: 'es6' },
      },
    ],
  },
  testMatch: [
    '<rootDir>/services/**/*.test.ts',
    '<rootDir>/test/**/*.test.ts',
    '<rootDir>/sdk/ts/**/*.test.ts',
    '<rootDir>/sdk/kotlin/*.test.ts',
    '<rootDir>/envoy/**/*.test.ts',
    '<rootDir>/prisma/**/*.test.ts',
    '<rootDir>/scripts/**/*.test.ts',
    '<rootDir>/dashboard/**/*.test.ts',
  ],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 60000,
  maxWorkers: 2,
};
