import { eventOrMissed } from '../fanout/cohorts.js';
import { MAX_HISTORY_TYPE_LENGTH } from '../services/history-service.js';
import { builder } from './builder.js';
import { connectionType, filterDescription } from './connections.js';
import { rowIdParser } from './global-id.js';
import { HistoryRecordRef } from './refs.js';

builder.node(HistoryRecordRef, {
  description: 'An audit record of a task transition or payment milestone.',
  id: { resolve: (record) => record.id, parse: rowIdParser('HistoryRecord') },
  loadOne: (id, ctx) => ctx.services.history.getById(ctx.viewer, id),
  fields: (t) => ({
    type: t.exposeString('type', {
      description: 'Record type, e.g. `ACTION_INSTALL`, `SYSTEM_INSTALL_SUCCEED`, `system`.',
    }),
    message: t.exposeString('message', { description: 'What happened.' }),
    app: t.exposeString('app', { nullable: true, description: 'App concerned.' }),
    userId: t.exposeString('userId', { description: 'User concerned.' }),
    time: t.field({ type: 'DateTime', description: 'When it happened.', resolve: (record) => record.time }),
    extended: t.field({
      type: 'JSON',
      nullable: true,
      description: 'Details (task id, status, …).',
      resolve: (record) => record.extended,
    }),
  }),
});

const HistoryRecordConnection = connectionType(HistoryRecordRef, 'HistoryRecord', 'history records');

const HistoryFilterInput = builder.inputType('HistoryFilter', {
  description: filterDescription('history records'),
  fields: (t) => ({
    type: t.stringList({ description: `Only these record types (each 1 to ${MAX_HISTORY_TYPE_LENGTH} characters).` }),
    app: t.string({ description: 'Only this app.' }),
    userId: t.string({ description: 'Only this user (admins only).' }),
    from: t.field({ type: 'DateTime', description: 'Only records at or after this time.' }),
    to: t.field({ type: 'DateTime', description: 'Only records at or before this time.' }),
  }),
});

builder.subscriptionField('historyAdded', (t) =>
  t.field({
    type: HistoryRecordRef,
    description: 'Each new history record you may see that matches the filter.',
    args: { filter: t.arg({ type: HistoryFilterInput, description: 'Which records.' }) },
    subscribe: (_root, { filter }, ctx) => ctx.services.history.subscribe(ctx.viewer, filter ?? {}),
    resolve: (record) => eventOrMissed(record, 'query history for the records you missed'),
  }),
);

builder.queryField('history', (t) =>
  t.connection(
    {
      type: HistoryRecordRef,
      description: "Audit history (yours, or everyone's for admins), newest first.",
      args: { filter: t.arg({ type: HistoryFilterInput, description: 'Which records.' }) },
      resolve: (_root, { filter, ...page }, ctx) => ctx.services.history.list(ctx.viewer, filter ?? {}, page),
    },
    HistoryRecordConnection,
  ),
);
