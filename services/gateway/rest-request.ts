import { ScalarType, type DescField, type DescMessage, type JsonObject, type JsonValue } from '@bufbuild/protobuf';

import { invalidArgument } from '../core/errors.ts';

/**
 * Well-known message types whose protobuf JSON form is one string or scalar, so a path or
 * query value can fill them directly.
 */
const SCALAR_JSON_MESSAGES = new Set([
  'google.protobuf.Timestamp',
  'google.protobuf.Duration',
  'google.protobuf.FieldMask',
  'google.protobuf.DoubleValue',
  'google.protobuf.FloatValue',
  'google.protobuf.Int64Value',
  'google.protobuf.UInt64Value',
  'google.protobuf.Int32Value',
  'google.protobuf.UInt32Value',
  'google.protobuf.BoolValue',
  'google.protobuf.StringValue',
  'google.protobuf.BytesValue',
]);

/**
 * Finds the fields a dotted path names, from `message` down. Each name may be the proto
 * field name or its JSON name. Throws INVALID_ARGUMENT naming `source` (the query parameter
 * or template variable) when a name is unknown or passes through a non-message field.
 */
export function resolveFieldPath(message: DescMessage, names: string[], source: string): DescField[] {
  const fields: DescField[] = [];
  let current: DescMessage | undefined = message;
  for (const name of names) {
    if (current === undefined) {
      throw invalidArgument(source, `"${source}" does not name a field of ${message.typeName}`);
    }
    const field: DescField | undefined = current.fields.find(
      (candidate) => candidate.name === name || candidate.jsonName === name,
    );
    if (field === undefined) {
      throw invalidArgument(source, `"${source}" does not name a field of ${message.typeName}`);
    }
    fields.push(field);
    current = field.fieldKind === 'message' ? field.message : undefined;
  }
  return fields;
}

/**
 * Sets the field at `fields` in the protobuf JSON object `target` from text values (a path
 * variable, query parameter or form field), creating nested objects on the way. Repeated
 * fields collect every value; other fields take the last one.
 */
export function setFieldFromText(
  target: JsonObject,
  fields: DescField[],
  texts: string[],
  source: string,
): void {
  let object = target;
  for (const field of fields.slice(0, -1)) {
    if (field.fieldKind !== 'message') {
      throw invalidArgument(source, `"${source}" passes through ${field.name}, which is not a message`);
    }
    const next = object[field.jsonName];
    if (typeof next === 'object' && next !== null && !Array.isArray(next)) {
      object = next;
    } else {
      const created: JsonObject = {};
      object[field.jsonName] = created;
      object = created;
    }
  }

  const field = fields[fields.length - 1];
  const values = texts.map((text) => textToJson(field, text, source));
  if (field.fieldKind === 'list') {
    const existing = object[field.jsonName];
    object[field.jsonName] = Array.isArray(existing) ? [...existing, ...values] : values;
  } else if (values.length > 0) {
    object[field.jsonName] = values[values.length - 1];
  }
}

/** Converts one text value to the protobuf JSON value of a singular or list element. */
function textToJson(field: DescField, text: string, source: string): JsonValue {
  switch (field.fieldKind) {
    case 'scalar':
      return scalarTextToJson(field.scalar, text, source);
    case 'enum':
      return /^-?\d+$/.test(text) ? Number(text) : text;
    case 'message':
      return messageTextToJson(field.message, text, source);
    case 'list':
      switch (field.listKind) {
        case 'scalar':
          return scalarTextToJson(field.scalar, text, source);
        case 'enum':
          return /^-?\d+$/.test(text) ? Number(text) : text;
        case 'message':
          return messageTextToJson(field.message, text, source);
      }
      break;
    case 'map':
      throw invalidArgument(source, `"${source}" is a map field, which cannot be set from text; send it in a JSON body`);
  }
}

function messageTextToJson(message: DescMessage, text: string, source: string): JsonValue {
  if (!SCALAR_JSON_MESSAGES.has(message.typeName)) {
    throw invalidArgument(source, `"${source}" is a ${message.typeName} message, which cannot be set from text; send it in a JSON body`);
  }
  const wrapped = message.fields.find((field) => field.name === 'value');
  if (message.typeName.endsWith('Value') && wrapped?.fieldKind === 'scalar') {
    return scalarTextToJson(wrapped.scalar, text, source);
  }
  return text;
}

function scalarTextToJson(scalar: ScalarType, text: string, source: string): JsonValue {
  if (scalar === ScalarType.BOOL) {
    if (text === 'true' || text === '1') return true;
    if (text === 'false' || text === '0') return false;
    throw invalidArgument(source, `"${source}" must be true or false, got "${text}"`);
  }
  // Protobuf JSON accepts numbers as strings, so the handler's parser validates their range.
  return text;
}
