import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';
import type { FastifyInstance, FastifyReply } from 'fastify';

import type { Logger } from '../services/core/logger.ts';

/** Files the dashboard serves under `/dashboard/`, with their content types. */
interface DashboardAssets {
  'index.html': string;
  'app.js': string;
  'app.css': string;
}

const CONTENT_TYPES: Record<keyof DashboardAssets, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

/**
 * Policy of every dashboard response: scripts, styles, images and calls from this origin only,
 * no inline script or style, no framing, and forms that post back to this origin.
 */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

const sourceDirectory = fileURLToPath(new URL('./', import.meta.url));

/**
 * Bundles `dashboard/src/main.ts` with the TypeScript SDK in memory. No build step runs before
 * `npm start`: the bundle is made once, on the first request for a dashboard file, so servers
 * that never serve the dashboard never spend the time.
 */
async function bundleDashboard(): Promise<DashboardAssets> {
  const result = await build({
    entryPoints: [`${sourceDirectory}src/main.ts`],
    bundle: true,
    write: false,
    format: 'esm',
    target: 'es2022',
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
    outdir: 'out',
  });
  const script = result.outputFiles.find((file) => file.path.endsWith('.js'));
  if (!script) throw new Error('esbuild produced no JavaScript for the dashboard');
  return {
    'index.html': await readFile(`${sourceDirectory}index.html`, 'utf8'),
    'app.js': script.text,
    'app.css': await readFile(`${sourceDirectory}app.css`, 'utf8'),
  };
}

/**
 * Serves the admin dashboard at `/dashboard/`: `index.html`, `app.js` and `app.css`, each with
 * a Content-Security-Policy that allows only this origin. The page talks Connect to the same
 * server through the TypeScript SDK.
 */
export function registerDashboard(app: FastifyInstance, logger: Logger): void {
  let assets: Promise<DashboardAssets> | undefined;
  const loadAssets = () => {
    assets ??= bundleDashboard().catch((error: unknown) => {
      // A failed bundle is retried on the next request instead of being kept.
      assets = undefined;
      throw error;
    });
    return assets;
  };

  const send = async (reply: FastifyReply, name: keyof DashboardAssets) => {
    let files: DashboardAssets;
    try {
      files = await loadAssets();
    } catch (error) {
      logger.error({ err: error }, 'bundling the dashboard failed');
      return reply.status(500).type('text/plain').send('The dashboard failed to build; the server log has the details.');
    }
    return reply
      .header('content-security-policy', DASHBOARD_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', 'no-cache')
      .type(CONTENT_TYPES[name])
      .send(files[name]);
  };

  app.get('/dashboard', async (_request, reply) => reply.redirect('/dashboard/', 301));
  app.get('/dashboard/', async (_request, reply) => send(reply, 'index.html'));
  app.get('/dashboard/app.js', async (_request, reply) => send(reply, 'app.js'));
  app.get('/dashboard/app.css', async (_request, reply) => send(reply, 'app.css'));
}
