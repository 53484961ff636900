import type { Viewer } from '../auth/viewer.js';
import { builder } from './builder.js';

const ViewerRef = builder.objectRef<Viewer>('Viewer').implement({
  description: 'The identity a request runs as.',
  fields: (t) => ({
    userId: t.exposeString('userId', { description: 'User id.' }),
    isAdmin: t.exposeBoolean('isAdmin', { description: "Whether this user sees and may act on every user's data." }),
  }),
});

builder.queryField('viewer', (t) =>
  t.field({ type: ViewerRef, description: 'Who you are.', resolve: (_root, _args, ctx) => ctx.viewer }),
);
