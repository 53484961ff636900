import type { MarketSourceRow } from '../db/models.js';
import { MAX_SOURCE_ID_LENGTH } from '../domain/app-key.js';
import { SHOWN_TEXT_RULE } from '../domain/parse-input.js';
import {
  MAX_SOURCE_TITLE_LENGTH,
  publicSyncError,
  publicUrl,
  type SourceRemoval,
} from '../services/market-source-service.js';
import { builder } from './builder.js';
import { mutationResult } from './errors.js';
import { textIdParser } from './global-id.js';
import { MarketSourceRef } from './refs.js';

const MarketSourceSyncRef = builder.objectRef<MarketSourceRow>('MarketSourceSync').implement({
  description: "The Syncer's last outcome for a source, as every instance sees it.",
  fields: (t) => ({
    lastSyncAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When a sync last succeeded; null: never.',
      resolve: (source) => source.syncedAt,
    }),
    lastAttemptAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When a sync was last tried, successfully or not.',
      resolve: (source) => source.syncAttemptAt,
    }),
    lastError: t.string({
      nullable: true,
      description:
        'Why the last attempt failed (consecutiveFailures is then above 0; the last good catalogue stays). After a successful one, what it warns of: the entries it rejected (`N entries rejected; first: …`) or an index that lags its hash; else null.',
      resolve: (source) => (source.syncError === null ? null : publicSyncError(source.syncError)),
    }),
    consecutiveFailures: t.exposeInt('syncFailures', { description: 'Failed attempts since the last success.' }),
    durationMs: t.exposeInt('syncDurationMs', { nullable: true, description: 'How long the last attempt took.' }),
    nextSyncAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When the next sync is due (later after failures: backoff).',
      resolve: (source) => source.nextSyncAt,
    }),
    appCount: t.int({
      description: 'Catalogue apps of the source now.',
      resolve: (source, _args, ctx) => ctx.loaders.sourceAppCount.load(source.sourceId),
    }),
  }),
});

builder.node(MarketSourceRef, {
  description: 'A market source: the remote catalogue or a local one (upload, studio, cli).',
  id: { resolve: (source) => source.sourceId, parse: textIdParser('MarketSource', MAX_SOURCE_ID_LENGTH) },
  loadOne: (sourceId, ctx) => ctx.services.marketSources.get(ctx.viewer, sourceId),
  fields: (t) => ({
    sourceId: t.exposeString('sourceId', { description: 'Source id, e.g. `market.olares`.' }),
    title: t.exposeString('title', { description: 'Display name.' }),
    type: t.exposeString('type', { description: '`remote` or `local`.' }),
    baseUrl: t.string({
      nullable: true,
      description: 'Where the catalogue comes from (credentials in it are shown as `[redacted]`).',
      resolve: (source) => (source.baseUrl === null ? null : publicUrl(source.baseUrl)),
    }),
    description: t.exposeString('description', { nullable: true, description: 'What the source offers.' }),
    priority: t.exposeInt('priority', { description: 'Higher comes first.' }),
    isActive: t.exposeBoolean('isActive', { description: 'Whether apps from it are offered (one remote at most).' }),
    nsfw: t.exposeBoolean('nsfw', {
      description: 'Whether apps marked not safe for work are shown (set when the source is selected).',
    }),
    sync: t.field({
      type: MarketSourceSyncRef,
      description: 'Sync status: last success, last error, failures, next sync, app count.',
      resolve: (source) => source,
    }),
  }),
});

const RemovalRef = builder.objectRef<SourceRemoval>('MarketSourceRemoval').implement({
  description: 'What removing a market source took away.',
  fields: (t) => ({
    sourceId: t.exposeString('sourceId', { description: 'The removed source.' }),
    catalogAppsRemoved: t.exposeInt('catalogAppsRemoved', {
      description: 'Its catalogue apps, removed with it (installed apps stay).',
    }),
  }),
});

const sourceIdField = `Source id: letters, digits, \`.\`, \`_\` and \`-\`, at most ${MAX_SOURCE_ID_LENGTH} characters; different from every existing source's in more than letter case.`;

const AddMarketSourceInput = builder.inputType('AddMarketSourceInput', {
  description: 'A remote market source to add (inactive until selected).',
  fields: (t) => ({
    sourceId: t.string({ required: true, description: sourceIdField }),
    title: t.string({
      required: true,
      description: `Display name: 1 to ${MAX_SOURCE_TITLE_LENGTH} characters, ${SHOWN_TEXT_RULE}.`,
    }),
    baseUrl: t.string({
      required: true,
      description:
        'Absolute http(s) URL without query or fragment, at most 2048 characters; private and loopback addresses are allowed.',
    }),
    description: t.string({ description: 'What it offers, at most 1000 characters.' }),
    priority: t.int({ description: 'Sort order, 0 to 1000, higher first. Default 100.' }),
  }),
});

const SelectMarketSourceInput = builder.inputType('SelectMarketSourceInput', {
  description: 'The remote source to make the active one.',
  fields: (t) => ({
    sourceId: t.string({ required: true, description: 'An existing remote source.' }),
    nsfw: t.boolean({ required: true, description: 'Whether to show apps marked not safe for work.' }),
  }),
});

const sourceRefInput = (name: string, description: string) =>
  builder.inputType(name, {
    description,
    fields: (t) => ({ sourceId: t.string({ required: true, description: 'The source id.' }) }),
  });
const RemoveMarketSourceInput = sourceRefInput('RemoveMarketSourceInput', 'An inactive remote source to remove.');
const SyncMarketSourceInput = sourceRefInput('SyncMarketSourceInput', 'A source to sync now.');

const sourceResult = (name: string, successDescription: string) =>
  mutationResult(name, { name: 'marketSource', description: 'The source after the change.' }, successDescription);

builder.queryFields((t) => ({
  marketSources: t.field({
    type: [MarketSourceRef],
    description:
      'Sources whose apps are offered: the active remote and every local source, highest priority first. Admins may ask for the inactive remotes too.',
    args: {
      includeInactive: t.arg.boolean({
        description: 'Also list inactive remote sources (admins only; FORBIDDEN for others).',
      }),
    },
    resolve: (_root, { includeInactive }, ctx) => ctx.services.marketSources.list(ctx.viewer, { includeInactive }),
  }),
}));

builder.mutationFields((t) => ({
  addMarketSource: t.field({
    type: MarketSourceRef,
    description: 'Add a remote market source, inactive until selected (admins only).',
    errors: sourceResult('addMarketSource', 'The source was added.'),
    args: { input: t.arg({ type: AddMarketSourceInput, required: true, description: 'The source.' }) },
    resolve: (_root, { input }, ctx) => ctx.services.marketSources.add(ctx.viewer, input),
  }),
  selectMarketSource: t.field({
    type: MarketSourceRef,
    description:
      'Make a remote source the single active one, with the nsfw setting; the previous one becomes inactive (admins only).',
    errors: sourceResult('selectMarketSource', 'The source is the active remote now.'),
    args: { input: t.arg({ type: SelectMarketSourceInput, required: true, description: 'Which source.' }) },
    resolve: (_root, { input }, ctx) => ctx.services.marketSources.select(ctx.viewer, input),
  }),
  removeMarketSource: t.field({
    type: RemovalRef,
    description:
      'Remove an inactive remote source and its catalogue; apps installed from it stay (admins only). The active source and the local ones cannot be removed.',
    errors: mutationResult(
      'removeMarketSource',
      { name: 'removal', description: 'What was removed.' },
      'The source and its catalogue are gone.',
    ),
    args: { input: t.arg({ type: RemoveMarketSourceInput, required: true, description: 'Which source.' }) },
    resolve: (_root, { input }, ctx) => ctx.services.marketSources.remove(ctx.viewer, input),
  }),
  syncMarketSource: t.field({
    type: MarketSourceRef,
    description: 'Sync a source now; its `sync` field tells the outcome (admins only).',
    errors: sourceResult('syncMarketSource', 'The sync ran; see `marketSource.sync`.'),
    args: { input: t.arg({ type: SyncMarketSourceInput, required: true, description: 'Which source.' }) },
    resolve: (_root, { input }, ctx) => ctx.services.marketSources.syncNow(ctx.viewer, input),
  }),
}));
