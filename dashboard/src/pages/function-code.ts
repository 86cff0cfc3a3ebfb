import { Code, ConnectError } from '@connectrpc/connect';

import type { FunctionVersion } from '../../../sdk/ts/src/index.ts';
import { describeError, el, errorBox, field, formatTime, notice, run, show, table } from '../dom.ts';
import type { PageContext } from '../main.ts';

const TEMPLATE = `// Runs for every invocation. Return a JSON value or a Response.
export default async (request) => {
  console.log('called with', request.query);
  return { hello: request.query.name ?? 'world' };
};
`;

/** Moves the caret to a 1-based line and column of a textarea and scrolls it into view. */
function placeCaret(editor: HTMLTextAreaElement, line: number, column: number): void {
  const lines = editor.value.split('\n');
  let offset = 0;
  for (let index = 0; index < line - 1 && index < lines.length; index += 1) offset += lines[index].length + 1;
  offset += Math.max(0, column - 1);
  editor.focus();
  editor.setSelectionRange(offset, offset);
}

/** Returns the 1-based line and column of the caret, for the position shown under the editor. */
function caretPosition(editor: HTMLTextAreaElement): string {
  const before = editor.value.slice(0, editor.selectionStart).split('\n');
  return `Line ${before.length}, column ${before[before.length - 1].length + 1}`;
}

/**
 * Builds the code tab: a source editor (a plain textarea), deploy with syntax errors placed at
 * their line and column, and the version list with rollback.
 */
export function codeTab({ client, tenant }: PageContext, name: string): HTMLElement {
  const editor = el('textarea', { name: 'source', rows: 18, spellcheck: false, class: 'code', 'aria-describedby': 'caret' });
  const caret = el('p', { id: 'caret', class: 'caret' }, 'Line 1, column 1');
  const updateCaret = () => (caret.textContent = caretPosition(editor));
  for (const type of ['keyup', 'click', 'input', 'focus']) editor.addEventListener(type, updateCaret);

  const language = el('select', { name: 'language' }, el('option', { value: 'javascript' }, 'JavaScript'), el('option', { value: 'typescript' }, 'TypeScript'));
  const publicBox = el('input', { type: 'checkbox', name: 'public' });
  const deployOutput = el('div', { 'aria-live': 'polite' });
  const versionsOutput = el('div', { 'aria-live': 'polite' });
  const deploy = el('button', { type: 'submit' }, 'Deploy');

  const form = el(
    'form',
    { class: 'card' },
    field('Source', editor),
    caret,
    el('div', { class: 'row' }, field('Language', language), el('label', { class: 'choice' }, publicBox, 'Public (callable over HTTP without a token)')),
    deploy,
    deployOutput,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    deploy.disabled = true;
    show(deployOutput);
    try {
      const response = await client.functions.deployFunction({ tenant, name, source: editor.value, language: language.value, public: publicBox.checked });
      show(deployOutput, notice(`Deployed version ${response.version}; it is now active.`));
      await run(versionsOutput, null, loadVersions);
    } catch (error) {
      show(deployOutput, errorBox(error));
      const { reason, metadata } = describeError(error);
      if (reason === 'FUNCTION_SYNTAX_ERROR' && metadata.line) {
        deployOutput.append(el('p', { class: 'syntax-position' }, `At line ${metadata.line}, column ${metadata.column}.`));
        placeCaret(editor, Number(metadata.line), Number(metadata.column));
        updateCaret();
      }
    } finally {
      deploy.disabled = false;
    }
  });

  async function loadVersions() {
    let versions: FunctionVersion[];
    try {
      versions = (await client.functions.listFunctionVersions({ tenant, name, pageSize: 50 })).versions;
    } catch (error) {
      // A name without a deploy is a new function: start from the template.
      if (error instanceof ConnectError && error.code === Code.NotFound) {
        if (!editor.value) editor.value = TEMPLATE;
        show(versionsOutput, el('p', { class: 'empty' }, 'Not deployed yet. Deploy to create the function.'));
        return;
      }
      throw error;
    }
    const active = versions.find((version) => version.active);
    if (!editor.value && active) {
      const full = await client.functions.getFunctionVersion({ tenant, name, version: active.version });
      editor.value = full.functionVersion?.source ?? '';
      language.value = full.functionVersion?.language || 'javascript';
    }
    if (!editor.value) editor.value = TEMPLATE;
    const fn = await client.functions.getFunction({ tenant, name });
    publicBox.checked = fn.function?.public ?? false;

    show(
      versionsOutput,
      table(
        'Versions',
        ['Version', 'Created', 'Author', 'Language', 'State', 'Actions'],
        versions.map((version) => [
          String(version.version),
          formatTime(version.createTime),
          version.author,
          version.language,
          version.active ? 'active' : '',
          versionActions(version),
        ]),
      ),
    );
  }

  function versionActions(version: FunctionVersion): HTMLElement {
    const output = el('div');
    const open = el('button', {
      type: 'button',
      onclick: async () => {
        const full = await run(output, open, () => client.functions.getFunctionVersion({ tenant, name, version: version.version }));
        if (!full?.functionVersion) return;
        editor.value = full.functionVersion.source;
        language.value = full.functionVersion.language || 'javascript';
        editor.focus();
      },
    }, `Open v${version.version}`);
    const activate = el('button', {
      type: 'button',
      onclick: async () => {
        const done = await run(output, activate, () => client.functions.activateFunctionVersion({ tenant, name, version: version.version }));
        if (done) await run(versionsOutput, null, loadVersions);
      },
    }, `Activate v${version.version}`);
    return el('div', { class: 'actions' }, open, version.active ? null : activate, output);
  }

  void run(versionsOutput, null, loadVersions);
  return el('div', {}, form, el('section', { class: 'card' }, el('h2', {}, 'Versions'), versionsOutput));
}
