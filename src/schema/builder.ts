import SchemaBuilder from '@pothos/core';
import ErrorsPlugin from '@pothos/plugin-errors';
import RelayPlugin from '@pothos/plugin-relay';
import type { Viewer } from '../auth/viewer.js';
import type { TimeInput } from '../domain/instant.js';
import { DEFAULT_MAX_PAGE_SIZE } from '../platform/config-env.js';
import type { RuntimeService } from '../runtime/runtime-service.js';
import type { CatalogService } from '../services/catalog-service.js';
import type { CatalogueChanges } from '../services/catalogue-changes.js';
import type { ChartUploadService } from '../services/chart-upload-service.js';
import type { HistoryService } from '../services/history-service.js';
import type { InstalledAppService } from '../services/installed-app-service.js';
import type { LifecycleService } from '../services/lifecycle-service.js';
import type { Loaders } from '../services/loaders.js';
import type { MarketSourceService } from '../services/market-source-service.js';
import type { OperationService } from '../services/operation-service.js';
import { DEFAULT_PAGE_SIZE } from '../services/pagination.js';
import type { PaymentService } from '../services/payment-service.js';
import type { PurchaseService } from '../services/purchase-service.js';
import type { TaskService } from '../services/task-service.js';
import type { WebhookService } from '../services/webhook-service.js';
import { decodeGlobalId } from './global-id.js';

/**
 * What resolvers may call: the request-time services. The task engine, the event bus and the
 * runtime store are not here; resolvers reach them only through a service's rules.
 */
export interface ResolverServices {
  apps: InstalledAppService;
  tasks: TaskService;
  payments: PaymentService;
  purchases: PurchaseService;
  history: HistoryService;
  catalog: CatalogService;
  catalogueChanges: CatalogueChanges;
  uploads: ChartUploadService;
  marketSources: MarketSourceService;
  operations: OperationService;
  lifecycle: LifecycleService;
  runtime: RuntimeService;
  webhooks: WebhookService;
}

/** Per-request data: who asks, the services, and this request's batching loaders. */
export interface Context {
  viewer: Viewer;
  services: ResolverServices;
  loaders: Loaders;
  requestId: string;
}

export const builder = new SchemaBuilder<{
  Context: Context;
  DefaultFieldNullability: false;
  DefaultEdgesNullability: false;
  DefaultNodeNullability: false;
  Connection: { totalCount: () => number | Promise<number> };
  Scalars: {
    ID: { Input: string; Output: string | number };
    DateTime: { Input: TimeInput; Output: Date };
    JSON: { Input: unknown; Output: unknown };
    /** An uploaded file (GraphQL multipart request); checked by the service that reads it. */
    File: { Input: unknown; Output: never };
  };
}>({
  plugins: [ErrorsPlugin, RelayPlugin],
  defaultFieldNullability: false,
  errors: { defaultTypes: [] },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    edgesFieldOptions: { nullable: false, description: 'The items of this page with their cursors.' },
    nodeFieldOptions: { nullable: false, description: 'The item.' },
    cursorFieldOptions: { description: 'Opaque cursor of this item, for `after`/`before`.' },
    pageInfoFieldOptions: { description: 'Where this page sits in the whole list.' },
    hasNextPageFieldOptions: { description: 'Whether more items follow this page.' },
    hasPreviousPageFieldOptions: { description: 'Whether items precede this page.' },
    startCursorFieldOptions: { description: 'Cursor of the first item of this page.' },
    endCursorFieldOptions: { description: 'Cursor of the last item of this page.' },
    firstArgOptions: {
      description: `Return at most this many items from the start (after \`after\`); ${DEFAULT_PAGE_SIZE} when neither \`first\` nor \`last\` is given, at most the server’s MAX_PAGE_SIZE (${DEFAULT_MAX_PAGE_SIZE} by default); not with \`last\`. 0 reads no item: \`endCursor\` is then null, whatever \`hasNextPage\` says.`,
    },
    lastArgOptions: {
      description: `Return at most this many items from the end (before \`before\`); at most the server’s MAX_PAGE_SIZE (${DEFAULT_MAX_PAGE_SIZE} by default); not with \`first\`. 0 reads no item: \`startCursor\` is then null, whatever \`hasPreviousPage\` says.`,
    },
    afterArgOptions: { description: 'Return items after this cursor.' },
    beforeArgOptions: { description: 'Return items before this cursor.' },
    pageInfoTypeOptions: { description: 'Relay pagination state of a connection.' },
    nodeTypeOptions: { description: 'An object with a globally unique, opaque id, refetchable with `node(id:)`.' },
    idFieldOptions: { description: 'Globally unique opaque id of this object.' },
    nodeQueryOptions: {
      description: 'Refetch any object by its global id; null when it does not exist or is not yours.',
      args: { id: { description: 'The global id (the `id` field of any Node).' } },
    },
    nodesQueryOptions: false,
    defaultConnectionTypeOptions: { description: 'A page of a list, with Relay cursors and the total count.' },
    defaultEdgeTypeOptions: { description: 'One item of a page and its cursor.' },
    decodeGlobalID: decodeGlobalId,
  },
});

builder.queryType({ description: 'Reads of the Market runtime.' });
builder.subscriptionType({
  description: 'Live changes, over graphql-ws (WebSocket on /graphql) or server-sent events.',
});
