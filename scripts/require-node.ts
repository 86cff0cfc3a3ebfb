/**
 * Stops the process with a clear message unless it runs on Node.js 24. Imported first by every
 * entry point, because an older Node.js fails later with errors that do not name the cause.
 */
const major = Number(process.versions.node.split('.')[0]);
if (major !== 24) {
  process.stderr.write(
    `Tansu needs Node.js 24 LTS, but this is Node.js ${process.versions.node}.\n` +
      'Run it through npm (`npm start`, `npm test`), which uses the Node.js 24 binary that ' +
      '`npm install` puts in node_modules/.bin, or install Node.js 24.\n',
  );
  process.exit(1);
}
