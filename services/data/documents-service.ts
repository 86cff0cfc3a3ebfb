import { create, type JsonObject } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ConnectRouter, HandlerContext } from '@connectrpc/connect';

import {
  CreateDocumentResponseSchema,
  DeleteDocumentResponseSchema,
  DocumentSchema,
  Documents,
  GetDocumentResponseSchema,
  ListDocumentsResponseSchema,
  UpdateDocumentResponseSchema,
  type Document,
} from '#gen/tansu/data/v1/documents_pb.js';
import { domainError } from '../core/errors.ts';
import { decodePageToken, encodePageToken, pageSize } from '../core/pagination.ts';
import { inTransaction } from '../db/pool-handle.ts';
import { requireTenantCaller } from '../identity/authenticate.ts';
import type { Platform } from '../platform/platform.ts';
import type { TenantContext } from '../platform/tenant-registry.ts';

const collectionPattern = /^[a-z][a-z0-9_-]{0,62}$/;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface DocumentRow {
  id: string;
  collection_id: string;
  data: JsonObject;
  created_at: Date;
  updated_at: Date;
}

const DOCUMENT_COLUMNS = 'id, collection_id, data, created_at, updated_at';

function toDocumentMessage(row: DocumentRow): Document {
  return create(DocumentSchema, {
    id: row.id,
    collection: row.collection_id,
    data: row.data,
    createTime: timestampFromDate(row.created_at),
    updateTime: timestampFromDate(row.updated_at),
  });
}

function assertCollection(name: string): void {
  if (!collectionPattern.test(name)) {
    throw domainError(
      'INVALID_ARGUMENT',
      `collection "${name}" is not a valid name: use 1 to 63 lowercase letters, digits, "_" and "-", starting with a letter`,
      { metadata: { field: 'collection' } },
    );
  }
}

function notFound(collection: string, id: string): Error {
  return domainError('NOT_FOUND', `document "${id}" does not exist in collection "${collection}"`, {
    metadata: { collection, id },
  });
}

/**
 * Checks the caller, then the tenant and the collection name. The caller comes first, so a
 * token of another tenant learns nothing about whether the tenant exists.
 */
async function open(platform: Platform, context: HandlerContext, tenantId: string, collection: string): Promise<TenantContext> {
  await requireTenantCaller(platform, context, tenantId);
  const tenant = await platform.tenants.get(tenantId);
  assertCollection(collection);
  return tenant;
}

/** Registers the Documents service: any signed-in user of the tenant reads and writes. */
export function documentsRoutes(platform: Platform) {
  return (router: ConnectRouter) =>
    router.service(Documents, {
      async createDocument(request, context) {
        const tenant = await open(platform, context, request.tenant, request.collection);
        const row = await inTransaction(tenant.db, async (client) => {
          await client.query('INSERT INTO collections (id) VALUES ($1) ON CONFLICT (id) DO NOTHING', [request.collection]);
          const inserted = await client.query<DocumentRow>(
            `INSERT INTO documents (collection_id, data) VALUES ($1, $2) RETURNING ${DOCUMENT_COLUMNS}`,
            [request.collection, JSON.stringify(request.data ?? {})],
          );
          return inserted.rows[0];
        });
        return create(CreateDocumentResponseSchema, { document: toDocumentMessage(row) });
      },

      async getDocument(request, context) {
        const tenant = await open(platform, context, request.tenant, request.collection);
        if (!uuidPattern.test(request.id)) throw notFound(request.collection, request.id);
        const { rows } = await tenant.db.query<DocumentRow>(
          `SELECT ${DOCUMENT_COLUMNS} FROM documents WHERE id = $1 AND collection_id = $2`,
          [request.id, request.collection],
        );
        if (rows.length === 0) throw notFound(request.collection, request.id);
        return create(GetDocumentResponseSchema, { document: toDocumentMessage(rows[0]) });
      },

      async listDocuments(request, context) {
        const tenant = await open(platform, context, request.tenant, request.collection);
        const size = pageSize(request.pageSize);
        const cursor = decodePageToken(request.pageToken, `documents:${request.collection}`);
        let after: [string, string] = ['-infinity', '00000000-0000-0000-0000-000000000000'];
        if (cursor !== undefined) {
          const [time, id] = cursor.split('|');
          if (!time || !id || !uuidPattern.test(id)) {
            throw domainError('INVALID_PAGE_TOKEN', 'the page token is not valid for this list', { metadata: { field: 'page_token' } });
          }
          after = [time, id];
        }
        const { rows } = await tenant.db.query<DocumentRow & { cursor_time: string }>(
          `SELECT ${DOCUMENT_COLUMNS}, tansu_iso_time(created_at) AS cursor_time FROM documents
           WHERE collection_id = $1 AND (created_at, id) > ($2::timestamptz, $3::uuid)
           ORDER BY created_at, id LIMIT $4`,
          [request.collection, after[0], after[1], size + 1],
        );
        const page = rows.slice(0, size);
        const last = page[page.length - 1];
        return create(ListDocumentsResponseSchema, {
          documents: page.map(toDocumentMessage),
          nextPageToken:
            rows.length > size ? encodePageToken(`documents:${request.collection}`, `${last.cursor_time}|${last.id}`) : '',
        });
      },

      async updateDocument(request, context) {
        const tenant = await open(platform, context, request.tenant, request.collection);
        if (!uuidPattern.test(request.id)) throw notFound(request.collection, request.id);
        if (request.data === undefined) {
          throw domainError('INVALID_ARGUMENT', 'data is required', { metadata: { field: 'data' } });
        }
        const { rows } = await tenant.db.query<DocumentRow>(
          `UPDATE documents SET data = $3, updated_at = now() WHERE id = $1 AND collection_id = $2
           RETURNING ${DOCUMENT_COLUMNS}`,
          [request.id, request.collection, JSON.stringify(request.data)],
        );
        if (rows.length === 0) throw notFound(request.collection, request.id);
        return create(UpdateDocumentResponseSchema, { document: toDocumentMessage(rows[0]) });
      },

      async deleteDocument(request, context) {
        const tenant = await open(platform, context, request.tenant, request.collection);
        if (!uuidPattern.test(request.id)) throw notFound(request.collection, request.id);
        const deleted = await tenant.db.query('DELETE FROM documents WHERE id = $1 AND collection_id = $2', [
          request.id,
          request.collection,
        ]);
        if (deleted.rowCount === 0) throw notFound(request.collection, request.id);
        return create(DeleteDocumentResponseSchema, {});
      },
    });
}
