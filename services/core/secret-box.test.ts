import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createSecretBox, loadMasterKey } from './secret-box.ts';

describe('createSecretBox', () => {
  const box = createSecretBox(randomBytes(32));

  test('round trip with associated data', () => {
    const sealed = box.encrypt('sk_live_123', 'tenant:acme:secret:STRIPE');
    expect(sealed.startsWith('v1.')).toBe(true);
    expect(sealed).not.toContain('sk_live_123');
    expect(box.decrypt(sealed, 'tenant:acme:secret:STRIPE')).toBe('sk_live_123');
  });

  test('round trip of empty and non-ASCII text', () => {
    expect(box.decrypt(box.encrypt(''))).toBe('');
    expect(box.decrypt(box.encrypt('pässwörd ✓'))).toBe('pässwörd ✓');
  });

  test('same plaintext seals differently each time', () => {
    expect(box.encrypt('x', 'a')).not.toBe(box.encrypt('x', 'a'));
  });

  test('other tenant associated data fails', () => {
    const sealed = box.encrypt('value', 'tenant:acme:secret:STRIPE');
    expect(() => box.decrypt(sealed, 'tenant:globex:secret:STRIPE')).toThrow(/failed to decrypt/);
    expect(() => box.decrypt(sealed)).toThrow(/failed to decrypt/);
  });

  test('tampered ciphertext fails', () => {
    const sealed = box.encrypt('value-to-protect', 'aad');
    const [version, iv, data, tag] = sealed.split('.');
    const bytes = Buffer.from(data, 'base64url');
    bytes[0] ^= 0x01;
    const tampered = [version, iv, bytes.toString('base64url'), tag].join('.');
    expect(() => box.decrypt(tampered, 'aad')).toThrow(/failed to decrypt/);
  });

  test('tampered tag fails', () => {
    const sealed = box.encrypt('value', 'aad');
    const [version, iv, data, tag] = sealed.split('.');
    const bytes = Buffer.from(tag, 'base64url');
    bytes[15] ^= 0x80;
    expect(() => box.decrypt([version, iv, data, bytes.toString('base64url')].join('.'), 'aad')).toThrow(
      /failed to decrypt/,
    );
  });

  test('other key fails', () => {
    const sealed = box.encrypt('value', 'aad');
    expect(() => createSecretBox(randomBytes(32)).decrypt(sealed, 'aad')).toThrow(/failed to decrypt/);
  });

  test('malformed values are rejected', () => {
    expect(() => box.decrypt('plain text', 'aad')).toThrow(/malformed/);
    expect(() => box.decrypt('v2.a.b.c', 'aad')).toThrow(/malformed/);
    expect(() => box.decrypt('v1.AAAA.BBBB.CCCC', 'aad')).toThrow(/wrong length/);
  });

  test('key of wrong length is rejected', () => {
    expect(() => createSecretBox(randomBytes(16))).toThrow(/32 bytes/);
  });
});

describe('loadMasterKey', () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'tansu-secret-box-'));
  });
  afterEach(() => {
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('reads a hex key from TANSU_MASTER_KEY', () => {
    const key = randomBytes(32);
    const loaded = loadMasterKey({ env: { TANSU_MASTER_KEY: key.toString('hex') }, dataDir });
    expect(loaded.equals(key)).toBe(true);
  });

  test('reads base64 and base64url keys', () => {
    const key = randomBytes(32);
    for (const text of [key.toString('base64'), key.toString('base64url')]) {
      expect(loadMasterKey({ env: { TANSU_MASTER_KEY: text }, dataDir }).equals(key)).toBe(true);
    }
  });

  test('bad TANSU_MASTER_KEY names variable and form', () => {
    const invalid = ['', 'secret', randomBytes(16).toString('hex'), randomBytes(31).toString('base64')];
    for (const value of invalid) {
      expect(() => loadMasterKey({ env: { TANSU_MASTER_KEY: value }, dataDir })).toThrow(
        /TANSU_MASTER_KEY is invalid: expected 32 bytes as 64 hex digits or as base64/,
      );
    }
  });

  test('creates key file with mode 0600 and reuses it', () => {
    const first = loadMasterKey({ env: {}, dataDir: join(dataDir, 'nested') });
    const path = join(dataDir, 'nested', 'master.key');
    expect(first.length).toBe(32);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(Buffer.from(readFileSync(path, 'utf8').trim(), 'base64').equals(first)).toBe(true);

    const second = loadMasterKey({ env: {}, dataDir: join(dataDir, 'nested') });
    expect(second.equals(first)).toBe(true);
  });

  test('key file readable by others is rejected', () => {
    loadMasterKey({ env: {}, dataDir });
    chmodSync(join(dataDir, 'master.key'), 0o644);
    expect(() => loadMasterKey({ env: {}, dataDir })).toThrow(/readable by other users.*chmod 600/);
  });
});
