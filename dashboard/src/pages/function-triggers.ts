import type { Trigger } from '../../../sdk/ts/src/index.ts';
import { el, errorBox, field, formText, formatTime, notice, run, show, table } from '../dom.ts';
import type { PageContext } from '../main.ts';

const PREVIEW_COUNT = 5;

/**
 * Builds the triggers tab: the function's triggers with enable, disable and delete, and a form
 * for an event or cron trigger whose cron field previews the next fire times as one types.
 */
export function triggersTab({ client, tenant }: PageContext, name: string): HTMLElement {
  const listOutput = el('div', { 'aria-live': 'polite' });
  const createOutput = el('div', { 'aria-live': 'polite' });
  const preview = el('div', { class: 'preview', 'aria-live': 'polite' });

  async function load() {
    const { triggers } = await client.triggers.listTriggers({ tenant, functionName: name });
    show(
      listOutput,
      table(
        'Triggers',
        ['Kind', 'Pattern or schedule', 'Time zone', 'Attempts', 'Last run', 'State', 'Actions'],
        triggers.map((trigger) => [
          trigger.cron ? 'cron' : 'event',
          el('code', {}, trigger.cron || trigger.eventPattern),
          trigger.timeZone || '—',
          trigger.cron ? '—' : String(trigger.maxAttempts),
          formatTime(trigger.lastInvokeTime),
          trigger.enabled ? 'enabled' : 'disabled',
          triggerActions(trigger),
        ]),
      ),
    );
  }

  function triggerActions(trigger: Trigger): HTMLElement {
    const output = el('div');
    const toggle = el('button', {
      type: 'button',
      onclick: async () => {
        const done = await run(output, toggle, () => client.triggers.updateTrigger({ tenant, functionName: name, id: trigger.id, enabled: !trigger.enabled }));
        if (done) await run(listOutput, null, load);
      },
    }, trigger.enabled ? 'Disable' : 'Enable');
    const remove = el('button', {
      type: 'button',
      class: 'danger',
      onclick: async () => {
        const done = await run(output, remove, () => client.triggers.deleteTrigger({ tenant, functionName: name, id: trigger.id }));
        if (done) await run(listOutput, null, load);
      },
    }, 'Delete');
    return el('div', { class: 'actions' }, toggle, remove, output);
  }

  const eventFields = el(
    'div',
    {},
    field('Event pattern', el('input', { name: 'eventPattern', placeholder: 'document.created' }), 'An event type such as document.created; * matches one segment.'),
    el(
      'div',
      { class: 'row' },
      field('Max attempts', el('input', { name: 'maxAttempts', type: 'number', min: 1, max: 20, placeholder: 'default' })),
      field('Backoff (seconds)', el('input', { name: 'backoffSeconds', type: 'number', min: 1, placeholder: 'default' })),
    ),
  );
  const cronInput = el('input', { name: 'cron', placeholder: '0 9 * * 1-5' });
  const zoneInput = el('input', { name: 'timeZone', placeholder: "the tenant's time zone" });
  const cronFields = el(
    'div',
    {},
    el('div', { class: 'row' }, field('Cron expression', cronInput, 'Five fields: minute hour day month weekday.'), field('Time zone', zoneInput, 'IANA name such as Europe/Berlin.')),
    el('h3', {}, `Next ${PREVIEW_COUNT} fire times`),
    preview,
  );
  cronFields.hidden = true;

  const kindChoice = (value: string, text: string, checked: boolean) =>
    el('label', { class: 'choice' }, el('input', { type: 'radio', name: 'kind', value, checked, onchange: switchKind }), text);
  function switchKind() {
    const cron = formText(form, 'kind') === 'cron';
    cronFields.hidden = !cron;
    eventFields.hidden = cron;
  }

  // The preview asks the server, which parses cron the same way the scheduler does.
  let previewTimer: ReturnType<typeof setTimeout> | undefined;
  let previewRequest = 0;
  function schedulePreview() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(updatePreview, 300);
  }
  async function updatePreview() {
    const request = ++previewRequest;
    const cron = cronInput.value.trim();
    if (!cron) {
      show(preview);
      return;
    }
    try {
      const response = await client.triggers.previewSchedule({ tenant, cron, timeZone: zoneInput.value.trim(), count: PREVIEW_COUNT });
      if (request !== previewRequest) return;
      show(
        preview,
        el('p', {}, `In ${response.timeZone}:`),
        el('ol', { class: 'fire-times' }, ...response.fireTimes.map((fire) => el('li', {}, el('time', { datetime: fire.time ? new Date(Number(fire.time.seconds) * 1000).toISOString() : '' }, fire.localTime)))),
      );
    } catch (error) {
      if (request === previewRequest) show(preview, errorBox(error));
    }
  }
  cronInput.addEventListener('input', schedulePreview);
  zoneInput.addEventListener('input', schedulePreview);

  const submit = el('button', { type: 'submit' }, 'Create trigger');
  const form = el(
    'form',
    { class: 'card' },
    el('h2', {}, 'New trigger'),
    el('fieldset', {}, el('legend', {}, 'Runs on'), kindChoice('event', 'Events', true), kindChoice('cron', 'A cron schedule', false)),
    eventFields,
    cronFields,
    submit,
    createOutput,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const cron = formText(form, 'kind') === 'cron';
    const created = await run(createOutput, submit, () =>
      client.triggers.createTrigger(
        cron
          ? { tenant, functionName: name, cron: formText(form, 'cron'), timeZone: formText(form, 'timeZone') }
          : {
              tenant,
              functionName: name,
              eventPattern: formText(form, 'eventPattern'),
              maxAttempts: Number(formText(form, 'maxAttempts') || 0),
              backoffSeconds: Number(formText(form, 'backoffSeconds') || 0),
            },
      ),
    );
    if (!created) return;
    show(createOutput, notice(`Created the ${cron ? 'cron' : 'event'} trigger.`));
    await run(listOutput, null, load);
  });

  void run(listOutput, null, load);
  return el('div', {}, el('section', { class: 'card' }, el('h2', {}, 'Triggers'), listOutput), form);
}
