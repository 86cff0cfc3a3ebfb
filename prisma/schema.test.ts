// Keeps prisma/schema.prisma (tenant database) and prisma/platform.prisma (platform
// database) in agreement with what the SQL migrations create. Every table and column of a
// freshly migrated database must be in the schema with the same type, nullability and
// presence of a default, and the schema must have nothing the database lacks.
import { readFileSync } from 'node:fs';

import type pg from 'pg';

import type { MigrationSet } from '../services/db/migrate.ts';
import { createMigratedDatabase } from '../test/support/database.ts';
import { parsePrismaModels, postgresTypeOf, type SchemaModel } from './prisma-model.ts';

interface DatabaseColumn {
  table_name: string;
  column_name: string;
  udt_name: string;
  is_nullable: 'YES' | 'NO';
  column_default: string | null;
}

const schemaFiles: Record<MigrationSet, string> = {
  tenant: 'prisma/schema.prisma',
  platform: 'prisma/platform.prisma',
};

async function readColumns(pool: pg.Pool): Promise<DatabaseColumn[]> {
  const { rows } = await pool.query<DatabaseColumn>(
    `SELECT c.table_name, c.column_name, c.udt_name, c.is_nullable, c.column_default
       FROM information_schema.columns c
       JOIN information_schema.tables t
         ON t.table_schema = c.table_schema AND t.table_name = c.table_name
      WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
      ORDER BY c.table_name, c.ordinal_position`,
  );
  return rows;
}

/** Lists every difference between the schema's models and the database's columns. */
function compare(file: string, models: SchemaModel[], columns: DatabaseColumn[]): string[] {
  const problems: string[] = [];
  const modelsByTable = new Map(models.map((model) => [model.table, model]));
  const databaseTables = new Set(columns.map((column) => column.table_name));

  for (const table of databaseTables) {
    if (!modelsByTable.has(table)) {
      problems.push(`table "${table}" exists in the database but has no model with @@map("${table}") in ${file}`);
    }
  }
  for (const model of models) {
    if (!databaseTables.has(model.table)) {
      problems.push(`${file}:${model.line}: model ${model.name} maps to table "${model.table}", which the migrations do not create`);
    }
  }

  for (const column of columns) {
    const model = modelsByTable.get(column.table_name);
    if (!model) continue;
    const where = `${column.table_name}.${column.column_name}`;
    const field = model.columns.find((candidate) => candidate.column === column.column_name);
    if (!field) {
      problems.push(`column ${where} (${column.udt_name}) is missing from model ${model.name} in ${file}`);
      continue;
    }
    const at = `${file}:${field.line}: ${model.name}.${field.field} (${where})`;
    const expectedType = postgresTypeOf(field);
    if (expectedType !== column.udt_name) {
      problems.push(`${at} maps to ${expectedType}, but the column is ${column.udt_name}`);
    }
    const nullable = column.is_nullable === 'YES';
    if (nullable !== field.optional) {
      problems.push(`${at} is ${field.optional ? 'optional' : 'required'}, but the column is ${nullable ? 'nullable' : 'NOT NULL'}`);
    }
    const hasDefault = column.column_default !== null;
    if (hasDefault !== field.hasDefault) {
      problems.push(`${at} ${field.hasDefault ? 'has' : 'lacks'} @default, but the column ${hasDefault ? `defaults to ${column.column_default}` : 'has no default'}`);
    }
  }

  for (const model of models) {
    for (const field of model.columns) {
      const exists = columns.some(
        (column) => column.table_name === model.table && column.column_name === field.column,
      );
      if (databaseTables.has(model.table) && !exists) {
        problems.push(`${file}:${field.line}: ${model.name}.${field.field} maps to column ${model.table}.${field.column}, which the migrations do not create`);
      }
    }
  }
  return problems;
}

describe.each(['tenant', 'platform'] as const)('%s Prisma schema', (set) => {
  let database: Awaited<ReturnType<typeof createMigratedDatabase>>;

  beforeAll(async () => {
    database = await createMigratedDatabase(set);
  });

  afterAll(async () => {
    await database.drop();
  });

  test('matches the migrated database', async () => {
    const file = schemaFiles[set];
    const models = parsePrismaModels(readFileSync(file, 'utf8'), file);
    const columns = await readColumns(database.pool);

    expect(models.length).toBeGreaterThan(0);
    expect(columns.length).toBeGreaterThan(0);
    // One line per difference, so the failure names each table and column to fix.
    expect(compare(file, models, columns)).toEqual([]);
  });

  test('comparison detects a dropped column', async () => {
    const file = schemaFiles[set];
    const models = parsePrismaModels(readFileSync(file, 'utf8'), file);
    const columns = await readColumns(database.pool);
    const [first] = columns;

    const problems = compare(file, models, columns.slice(1));

    expect(problems).toEqual([
      expect.stringContaining(`maps to column ${first.table_name}.${first.column_name}, which the migrations do not create`),
    ]);
  });
});
