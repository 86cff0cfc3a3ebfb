import { create } from '@bufbuild/protobuf';

import { IdentitySettingsSchema, SettingSource, type IdentitySettings } from '../../../sdk/ts/src/index.ts';
import { el, notice, run, show } from '../dom.ts';
import type { Page } from '../main.ts';

const SOURCE_NAMES: Record<SettingSource, string> = {
  [SettingSource.UNSPECIFIED]: 'unknown',
  [SettingSource.DEFAULT]: 'built-in default',
  [SettingSource.PLATFORM]: 'platform',
  [SettingSource.TENANT]: 'this tenant',
};

/** Value kinds the editor offers: durations are edited in whole seconds. */
type Kind = 'duration' | 'boolean' | 'number' | 'text';

/** Turns a field path segment such as `min_length` into its property name `minLength`. */
function propertyName(segment: string): string {
  return segment.replace(/_([a-z])/g, (_match, letter: string) => letter.toUpperCase());
}

function readPath(settings: IdentitySettings, path: string): unknown {
  return path.split('.').reduce<unknown>((object, segment) => (object as Record<string, unknown> | undefined)?.[propertyName(segment)], settings);
}

function kindOf(value: unknown): Kind {
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'number') return 'number';
  if (value && typeof value === 'object' && 'seconds' in value) return 'duration';
  return 'text';
}

function displayValue(value: unknown, kind: Kind): string {
  if (kind === 'duration') return String((value as { seconds: bigint }).seconds);
  return value === undefined ? '' : String(value);
}

/** One editable row: the setting's path, its kind, the control and the value it started with. */
interface Row {
  path: string;
  kind: Kind;
  control: HTMLInputElement | HTMLSelectElement;
  inherit: HTMLInputElement;
  initial: string;
}

/**
 * Builds the settings page: every setting's effective value and where it comes from (this
 * tenant, the platform or the built-in default). Saving sends only the changed settings in the
 * update mask; "inherit" removes the tenant's value so the platform's or the default applies.
 */
export const settingsPage: Page = ({ client, tenant }) => {
  const output = el('div', { 'aria-live': 'polite' });
  const saveOutput = el('div', { 'aria-live': 'polite' });
  let rows: Row[] = [];

  function draw(settings: IdentitySettings | undefined, sources: Record<string, SettingSource>) {
    rows = [];
    const body = el('tbody');
    for (const path of Object.keys(sources).sort()) {
      const value = settings ? readPath(settings, path) : undefined;
      const kind = kindOf(value);
      const initial = displayValue(value, kind);
      const label = `${path}${kind === 'duration' ? ' (seconds)' : ''}`;
      const control =
        kind === 'boolean'
          ? el('select', { 'aria-label': label }, el('option', { value: 'true' }, 'true'), el('option', { value: 'false' }, 'false'))
          : el('input', { 'aria-label': label, type: kind === 'text' ? 'text' : 'number', value: initial });
      control.value = initial;
      const tenantValue = sources[path] === SettingSource.TENANT;
      const inherit = el('input', { type: 'checkbox', 'aria-label': `Inherit ${path}`, disabled: !tenantValue });
      rows.push({ path, kind, control, inherit, initial });
      body.append(el('tr', {}, el('th', { scope: 'row' }, el('code', {}, label)), el('td', {}, control), el('td', {}, SOURCE_NAMES[sources[path]]), el('td', {}, inherit)));
    }
    show(
      output,
      el('table', {}, el('caption', {}, 'Effective settings'), el('thead', {}, el('tr', {}, ...['Setting', 'Value', 'Source', 'Inherit'].map((header) => el('th', { scope: 'col' }, header)))), body),
    );
  }

  async function load() {
    const response = await client.settings.getTenantSettings({ tenant });
    draw(response.settings, response.sources);
  }

  const save = el('button', {
    type: 'button',
    onclick: async () => {
      const values: Record<string, unknown> = {};
      const paths: string[] = [];
      for (const row of rows) {
        if (row.inherit.checked) {
          paths.push(row.path);
          continue;
        }
        if (row.control.value === row.initial) continue;
        paths.push(row.path);
        const segments = row.path.split('.').map(propertyName);
        let target = values;
        for (const segment of segments.slice(0, -1)) target = (target[segment] ??= {}) as Record<string, unknown>;
        const text = row.control.value.trim();
        target[segments[segments.length - 1]] =
          row.kind === 'duration' ? { seconds: BigInt(text || '0'), nanos: 0 } : row.kind === 'boolean' ? text === 'true' : row.kind === 'number' ? Number(text) : text;
      }
      if (paths.length === 0) {
        show(saveOutput, notice('Nothing changed.'));
        return;
      }
      const response = await run(saveOutput, save, () =>
        client.settings.updateTenantSettings({ tenant, settings: create(IdentitySettingsSchema, values as never), updateMask: { paths } }),
      );
      if (!response) return;
      draw(response.settings, response.sources);
      show(saveOutput, notice(`Saved ${paths.join(', ')}.`));
    },
  }, 'Save changes');

  void run(output, null, load);
  return { title: 'Settings', content: el('div', { class: 'card' }, output, el('div', { class: 'row' }, save), saveOutput) };
};
