// A small reader of the Prisma schema language, enough to compare prisma/*.prisma with a
// migrated database: models, their scalar fields, @map, @@map, @default and native types.
// It does not validate a schema; Prisma's own tools do that.

/** Scalar field of a model and the column it maps to. */
export interface SchemaColumn {
  /** Field name in the schema. */
  field: string;
  /** Column name: the field's `@map`, or the field name. */
  column: string;
  /** Prisma scalar type, such as `String` or `DateTime`. */
  type: string;
  /** Native type attribute without arguments, such as `Uuid` for `@db.Uuid`; null if none. */
  nativeType: string | null;
  /** Whether the type ends in `?`. */
  optional: boolean;
  /** Whether the type ends in `[]`. */
  list: boolean;
  /** Whether the field has `@default(...)`. */
  hasDefault: boolean;
  /** 1-based line of the field in the schema file. */
  line: number;
}

/** Model of a Prisma schema with its scalar fields; relation fields are left out. */
export interface SchemaModel {
  name: string;
  /** Table name: the model's `@@map`, or the model name. */
  table: string;
  columns: SchemaColumn[];
  line: number;
}

const modelStart = /^model\s+(\w+)\s*\{\s*$/;
const fieldLine = /^(\w+)\s+(\w+)(\[\]|\?)?(.*)$/;

/** Parses the models of a Prisma schema. Throws on a field line it cannot read. */
export function parsePrismaModels(source: string, fileName: string): SchemaModel[] {
  const lines = source.split('\n');
  const rawModels: { name: string; line: number; body: { text: string; line: number }[] }[] = [];
  let current: (typeof rawModels)[number] | null = null;

  for (const [index, raw] of lines.entries()) {
    const text = raw.replace(/\/\/.*$/, '').trim();
    if (current === null) {
      const start = modelStart.exec(text);
      if (start) {
        current = { name: start[1], line: index + 1, body: [] };
        rawModels.push(current);
      }
      continue;
    }
    if (text === '}') {
      current = null;
      continue;
    }
    if (text !== '') current.body.push({ text, line: index + 1 });
  }

  const modelNames = new Set(rawModels.map((model) => model.name));
  return rawModels.map((model) => {
    let table = model.name;
    const columns: SchemaColumn[] = [];
    for (const { text, line } of model.body) {
      if (text.startsWith('@@')) {
        const map = /^@@map\("([^"]+)"\)/.exec(text);
        if (map) table = map[1];
        continue;
      }
      const field = fieldLine.exec(text);
      if (!field) throw new Error(`${fileName}:${line}: cannot read field line "${text}"`);
      const [, name, type, modifier, attributes] = field;
      if (modelNames.has(type)) continue;
      columns.push({
        field: name,
        column: /@map\("([^"]+)"\)/.exec(attributes)?.[1] ?? name,
        type,
        nativeType: /@db\.(\w+)/.exec(attributes)?.[1] ?? null,
        optional: modifier === '?',
        list: modifier === '[]',
        hasDefault: /@default\(/.test(attributes),
        line,
      });
    }
    return { name: model.name, table, columns, line: model.line };
  });
}

const defaultNativeTypes: Record<string, string> = {
  String: 'text',
  Boolean: 'bool',
  Int: 'int4',
  BigInt: 'int8',
  Float: 'float8',
  Decimal: 'numeric',
  DateTime: 'timestamp',
  Json: 'jsonb',
  Bytes: 'bytea',
};

const nativeTypeNames: Record<string, string> = {
  Uuid: 'uuid',
  Text: 'text',
  Timestamptz: 'timestamptz',
  Timestamp: 'timestamp',
  JsonB: 'jsonb',
  Json: 'json',
  Integer: 'int4',
  BigInt: 'int8',
  DoublePrecision: 'float8',
  Real: 'float4',
  SmallInt: 'int2',
  Boolean: 'bool',
  ByteA: 'bytea',
  Date: 'date',
};

/**
 * Returns the PostgreSQL type (as `information_schema.columns.udt_name` spells it, so
 * `_text` for `text[]`) that Prisma maps a field to.
 */
export function postgresTypeOf(column: SchemaColumn): string {
  const base = column.nativeType
    ? nativeTypeNames[column.nativeType]
    : defaultNativeTypes[column.type];
  if (base === undefined) {
    throw new Error(
      `no PostgreSQL type known for ${column.type} @db.${column.nativeType}; add it to prisma/prisma-model.ts`,
    );
  }
  return column.list ? `_${base}` : base;
}
