import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Name of the environment variable that sets the master key. */
export const MASTER_KEY_VARIABLE = 'TANSU_MASTER_KEY';

/** Name of the key file created under the data directory when the variable is not set. */
export const MASTER_KEY_FILE = 'master.key';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

// Format of a sealed value: `v1.<iv>.<ciphertext>.<tag>`, each part base64url without padding.
// `v1` is AES-256-GCM with a 96-bit random IV and a 128-bit tag. A later format gets a new
// prefix, so values written by older releases stay readable.
const FORMAT_V1 = 'v1';

const HEX_KEY = /^[0-9a-fA-F]{64}$/;
// 32 bytes are 43 base64 characters plus one `=` of padding (optional here), in the standard
// or the URL-safe alphabet.
const BASE64_KEY = /^[A-Za-z0-9+/]{43}=?$/;
const BASE64URL_KEY = /^[A-Za-z0-9_-]{43}$/;

/** Encrypts and decrypts short values (secrets, private keys) stored in the database. */
export interface SecretBox {
  /**
   * Encrypts `plaintext` under a fresh random IV. `associatedData` is authenticated but not
   * stored: the same string must be passed to `decrypt`, which binds the value to its place
   * (for example `tenant:acme:secret:STRIPE_KEY`).
   */
  encrypt(plaintext: string, associatedData?: string): string;
  /**
   * Decrypts a value sealed by `encrypt`. Throws when the value is malformed, was sealed with
   * another key or other associated data, or was changed.
   */
  decrypt(sealed: string, associatedData?: string): string;
}

/**
 * Reads the 32-byte master key: from `TANSU_MASTER_KEY` (64 hex digits or 43/44 base64
 * characters) when the variable is set, else from `<dataDir>/master.key`, which is created
 * with mode 0600 on first use. Throws an Error naming the variable or file when the value is
 * not a 32-byte key, and when the key file is readable by group or others.
 */
export function loadMasterKey(options: { env: NodeJS.ProcessEnv; dataDir: string }): Buffer {
  const fromEnv = options.env[MASTER_KEY_VARIABLE];
  // An empty variable is rejected rather than treated as unset, because falling back to the key
  // file would silently encrypt with another key than the operator meant to configure.
  if (fromEnv !== undefined) {
    const key = parseKey(fromEnv.trim());
    if (!key) {
      throw new Error(
        `${MASTER_KEY_VARIABLE} is invalid: expected 32 bytes as 64 hex digits or as base64 ` +
          '(44 characters, e.g. the output of `openssl rand -base64 32`)',
      );
    }
    return key;
  }
  return loadOrCreateKeyFile(options.dataDir);
}

/** Creates a SecretBox that seals values with AES-256-GCM under `key` (32 bytes). */
export function createSecretBox(key: Buffer): SecretBox {
  if (key.length !== KEY_BYTES) {
    throw new Error(`secret box key must be ${KEY_BYTES} bytes, got ${key.length}`);
  }
  const secretKey = Buffer.from(key);

  return {
    encrypt(plaintext, associatedData = '') {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', secretKey, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(Buffer.from(associatedData, 'utf8'));
      const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      const tag = cipher.getAuthTag();
      return [FORMAT_V1, iv, ciphertext, tag]
        .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
        .join('.');
    },

    decrypt(sealed, associatedData = '') {
      const parts = sealed.split('.');
      if (parts.length !== 4 || parts[0] !== FORMAT_V1) {
        throw new Error('sealed value is malformed: expected the v1 format `v1.<iv>.<data>.<tag>`');
      }
      const [, ivText, ciphertextText, tagText] = parts;
      const iv = Buffer.from(ivText, 'base64url');
      const ciphertext = Buffer.from(ciphertextText, 'base64url');
      const tag = Buffer.from(tagText, 'base64url');
      if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) {
        throw new Error('sealed value is malformed: IV or tag has the wrong length');
      }

      const decipher = createDecipheriv('aes-256-gcm', secretKey, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(associatedData, 'utf8'));
      decipher.setAuthTag(tag);
      try {
        return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
      } catch (cause) {
        throw new Error(
          'failed to decrypt sealed value: wrong master key, wrong associated data, or the value was changed',
          { cause },
        );
      }
    },
  };
}

function parseKey(text: string): Buffer | undefined {
  if (HEX_KEY.test(text)) return Buffer.from(text, 'hex');
  if (BASE64_KEY.test(text)) return Buffer.from(text, 'base64');
  if (BASE64URL_KEY.test(text)) return Buffer.from(text, 'base64url');
  return undefined;
}

function loadOrCreateKeyFile(dataDir: string): Buffer {
  const path = join(dataDir, MASTER_KEY_FILE);
  const existing = readKeyFile(path);
  if (existing) return existing;

  // Write the new key to a private temporary file, then link it into place. link() fails when
  // the key file already exists, so two processes starting at once agree on one key, and no
  // process reads a half-written file.
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const temporary = join(dataDir, `${MASTER_KEY_FILE}.${randomBytes(6).toString('hex')}.tmp`);
  writeFileSync(temporary, `${randomBytes(KEY_BYTES).toString('base64')}\n`, {
    mode: 0o600,
    flag: 'wx',
  });
  try {
    linkSync(temporary, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(temporary);
  }

  const created = readKeyFile(path);
  if (!created) throw new Error(`master key file ${path} was not created`);
  return created;
}

function readKeyFile(path: string): Buffer | undefined {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  if ((mode & 0o077) !== 0) {
    throw new Error(
      `master key file ${path} is readable by other users (mode ${(mode & 0o777).toString(8)}); ` +
        `run \`chmod 600 ${path}\``,
    );
  }
  const key = parseKey(readFileSync(path, 'utf8').trim());
  if (!key) {
    throw new Error(`master key file ${path} is invalid: expected 32 bytes as base64 or 64 hex digits`);
  }
  return key;
}
