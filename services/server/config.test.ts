import { ConfigError, loadConfig } from './config.ts';

describe('TANSU_ALLOW_PRIVATE_PROVIDER_URLS', () => {
  test('unset is false', () => {
    expect(loadConfig({}).allowPrivateProviderUrls).toBe(false);
  });

  test('true is read', () => {
    expect(loadConfig({ TANSU_ALLOW_PRIVATE_PROVIDER_URLS: 'true' }).allowPrivateProviderUrls).toBe(true);
  });

  test('other text stops the start, naming the variable', () => {
    expect(() => loadConfig({ TANSU_ALLOW_PRIVATE_PROVIDER_URLS: 'sometimes' })).toThrow(ConfigError);
    expect(() => loadConfig({ TANSU_ALLOW_PRIVATE_PROVIDER_URLS: 'sometimes' })).toThrow(/TANSU_ALLOW_PRIVATE_PROVIDER_URLS/);
  });
});
