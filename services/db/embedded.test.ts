import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import pg from 'pg';

import { startEmbeddedPostgres } from './embedded.ts';

describe('startEmbeddedPostgres', () => {
  const root = mkdtempSync(join(tmpdir(), 'tansu-embedded-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  test('second owner is rejected and the first keeps running', async () => {
    const dataDir = join(root, 'pg');
    const first = await startEmbeddedPostgres({ dataDir });
    try {
      // A second process claiming the same directory must fail without stopping the first.
      const second = spawn(resolve('node_modules/.bin/node'), [
        '--input-type=module',
        '-e',
        `import { startEmbeddedPostgres } from ${JSON.stringify(resolve('services/db/embedded.ts'))};
         startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)} }).then(
           () => process.exit(0),
           (error) => { console.error(error.message); process.exit(3); });`,
      ]);
      let stderr = '';
      second.stderr.on('data', (chunk) => (stderr += chunk));
      const code = await new Promise((done) => second.on('exit', done));
      expect(code).toBe(3);
      expect(stderr).toContain(`is in use by process ${process.pid}`);

      const client = new pg.Client(first.url);
      await client.connect();
      const { rows } = await client.query('SELECT 1 AS alive');
      await client.end();
      expect(rows[0].alive).toBe(1);
    } finally {
      await first.stop();
    }
  });

  test('owner file of a dead process is taken over', async () => {
    const dataDir = join(root, 'pg');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(`${dataDir}.owner`, '999999\n');
    const database = await startEmbeddedPostgres({ dataDir });
    await database.stop();
  });
});
