import { ConnectError } from '@connectrpc/connect';

import { errorMetadata, errorReason } from '../../sdk/ts/src/index.ts';

/** A child that `el` accepts: a node, text, or nothing (skipped). */
export type Child = Node | string | number | null | undefined | false;

/** Attributes and listeners of `el`: `on<event>` keys become listeners, the rest attributes. */
export type Attributes = Record<string, string | number | boolean | null | undefined | ((event: Event) => void)>;

/**
 * Creates an element with attributes and children. A `true` attribute is set empty, a `false`,
 * null or undefined one is left out, and `on<event>` functions are added as listeners.
 */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (typeof value === 'function') {
      element.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (value === true) {
      element.setAttribute(name, '');
    } else if (value !== false && value !== null && value !== undefined) {
      element.setAttribute(name, String(value));
    }
  }
  element.append(...nodes(children));
  return element;
}

let nextId = 0;

/**
 * Creates a labelled form control: a `<label for>` naming the control, and a hint tied to it
 * with `aria-describedby`, so the hint is read with the control but is not part of its name.
 */
export function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  nextId += 1;
  control.id ||= `field-${nextId}`;
  const hintElement = hint ? el('small', { id: `${control.id}-hint` }, hint) : null;
  if (hintElement) control.setAttribute('aria-describedby', hintElement.id);
  return el('div', { class: 'field' }, el('label', { for: control.id }, label), control, hintElement);
}

/** Replaces the children of `parent` with `children`. */
export function show(parent: Element, ...children: Child[]): void {
  parent.replaceChildren(...nodes(children));
}

function nodes(children: Child[]): (Node | string)[] {
  const present = children.filter((child) => child !== null && child !== undefined && child !== false);
  return present.map((child) => (typeof child === 'number' ? String(child) : child));
}

/** Describes a failed call for people: its message, its ErrorInfo reason and its metadata. */
export function describeError(error: unknown): { message: string; reason?: string; metadata: Record<string, string> } {
  if (error instanceof ConnectError) {
    return { message: error.rawMessage, reason: errorReason(error), metadata: errorMetadata(error) };
  }
  return { message: error instanceof Error ? error.message : String(error), metadata: {} };
}

/** Builds an alert box for a failed call, naming its reason as a code the reader can look up. */
export function errorBox(error: unknown): HTMLElement {
  const { message, reason } = describeError(error);
  return el('div', { class: 'error', role: 'alert' }, el('strong', {}, 'Error: '), message, reason ? ' ' : null, reason ? el('code', { class: 'reason', title: 'Error reason' }, reason) : null);
}

/** Builds a status line that screen readers announce. */
export function notice(text: string): HTMLElement {
  return el('p', { class: 'notice', role: 'status' }, text);
}

/** Formats a protobuf Timestamp (or nothing) as local date and time. */
export function formatTime(timestamp: { seconds: bigint; nanos: number } | undefined): string {
  if (!timestamp) return '—';
  const millis = Number(timestamp.seconds) * 1000 + Math.floor(timestamp.nanos / 1e6);
  return new Date(millis).toLocaleString();
}

/** Builds a table with a header row; `rows` are arrays of cells. */
export function table(caption: string, headers: string[], rows: Child[][]): HTMLElement {
  if (rows.length === 0) return el('p', { class: 'empty' }, `No ${caption.toLowerCase()} yet.`);
  return el(
    'table',
    {},
    el('caption', {}, caption),
    el('thead', {}, el('tr', {}, ...headers.map((header) => el('th', { scope: 'col' }, header)))),
    el('tbody', {}, ...rows.map((cells) => el('tr', {}, ...cells.map((cell) => el('td', {}, cell))))),
  );
}

/**
 * Runs `action` for a form submit or button click: disables `button` while it runs and puts
 * the error, if any, into `output`. Returns the action's result, or undefined after an error.
 */
export async function run<T>(output: Element, button: HTMLButtonElement | null, action: () => Promise<T>): Promise<T | undefined> {
  if (button) button.disabled = true;
  show(output);
  try {
    return await action();
  } catch (error) {
    show(output, errorBox(error));
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

/** Reads a named control of a form as trimmed text. */
export function formText(form: HTMLFormElement, name: string): string {
  const value = new FormData(form).get(name);
  return typeof value === 'string' ? value.trim() : '';
}
