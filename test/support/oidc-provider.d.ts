// oidc-provider ships no type declarations; the tests use it only as a stand-in provider.
declare module 'oidc-provider';
