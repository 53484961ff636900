import { isObjectType, lexicographicSortSchema } from 'graphql';
import { builder } from './builder.js';
import { registerNodeTypes } from './global-id.js';
import { rootFieldsInTurn } from './root-fields-in-turn.js';
import './scalars.js';
import './errors.js';
import './viewer.js';
import './tasks.js';
import './apps.js';
import './payments.js';
import './payment-price.js';
import './history.js';
import './catalog.js';
import './catalogue-changes.js';
import './market-sources.js';
import './operations.js';
import './uploads.js';
import './purchases.js';
import './runtime.js';
import './deliveries.js';
import './webhooks.js';

/** The whole schema, sorted so its printed form is stable. Building it opens no database. */
export const schema = lexicographicSortSchema(builder.toSchema());
rootFieldsInTurn(schema);

registerNodeTypes(
  Object.values(schema.getTypeMap())
    .filter((type) => isObjectType(type) && type.getInterfaces().some((face) => face.name === 'Node'))
    .map((type) => type.name),
);
