import {
  type ChainPrice,
  type Entrance,
  entryEntrances,
  entryLocales,
  entryRequirements,
  entryString,
  entryStrings,
  entryText,
  entryVersionHistory,
  type LocalizedField,
  localizedValue,
  MAX_LOCALE_LENGTH,
  type Price,
  type PriceDescription,
  type Product,
  parseLocale,
  productDescription,
  type Quantity,
  type Requirements,
  readPrice,
  type VersionRecord,
} from '../domain/catalogue-views.js';
import { parseRfc3339Time } from '../platform/rfc3339.js';
import { builder } from './builder.js';
import { assumedListSize, costWeight } from './connections.js';
import { CatalogAppRef } from './refs.js';

// The typed parts of a catalogue entry (catalogue-views.ts reads them defensively: a field the
// source left out or sent malformed answers null or []). CatalogApp's own fields are in catalog.ts.

export const LOCALE_ARG_DESCRIPTION = `Language tag such as \`en-US\` or \`zh\`, at most ${MAX_LOCALE_LENGTH} characters. Falls back to the same language in another region (for Chinese, in the script asked for first: Traditional for \`zh-TW\`, \`zh-HK\`, \`zh-Hant\`), then \`en-US\`, then any text there is. Default \`en-US\`. Only this argument chooses: the \`Accept-Language\` header is not read.`;

/**
 * What the long texts of an entry count in the query cost, in plain values of ~20 bytes: the rich
 * entries ENTRY_COST is sized on (catalog.ts) hold 8 KB of description (8,021 bytes in the answer)
 * and 500 characters of notes per release (524 bytes).
 */
const FULL_DESCRIPTION_COST = 400;
const RELEASE_NOTES_COST = 25;
/** Releases a version history counts as: the rich entries list 20 (an entry's size bounds them, not a page). */
const VERSION_HISTORY_ITEMS = 20;

const QuantityRef = builder.objectRef<Quantity>('CatalogQuantity').implement({
  description: 'An amount as the catalogue entry writes it (a Kubernetes quantity), and as a number.',
  fields: (t) => ({
    text: t.exposeString('text', { description: 'As written, e.g. `4Gi`, `25769803776`, `500m`.' }),
    value: t.exposeFloat('value', {
      nullable: true,
      description: 'As a number: cores for CPU, bytes for memory, disk and GPU memory. Null when it does not parse.',
    }),
  }),
});

const RequirementsRef = builder.objectRef<Requirements>('CatalogAppRequirements').implement({
  description: 'What an app needs to be installed; each null when the entry does not say.',
  fields: (t) => ({
    cpu: t.field({
      type: QuantityRef,
      nullable: true,
      description: 'CPU (`requiredCPU`), in cores.',
      resolve: (r) => r.cpu,
    }),
    memory: t.field({
      type: QuantityRef,
      nullable: true,
      description: 'Memory (`requiredMemory`), in bytes.',
      resolve: (r) => r.memory,
    }),
    disk: t.field({
      type: QuantityRef,
      nullable: true,
      description: 'Disk (`requiredDisk`), in bytes.',
      resolve: (r) => r.disk,
    }),
    gpu: t.field({
      type: QuantityRef,
      nullable: true,
      description: 'GPU memory (`requiredGPU`), in bytes.',
      resolve: (r) => r.gpu,
    }),
  }),
});

const EntranceRef = builder.objectRef<Entrance>('CatalogAppEntrance').implement({
  description: 'A way into the app once installed (a web UI or an API), as the catalogue entry declares it.',
  fields: (t) => ({
    name: t.exposeString('name', { nullable: true, description: 'Entrance name, unique within the app.' }),
    title: t.exposeString('title', { nullable: true, description: 'Display title.' }),
    host: t.exposeString('host', { nullable: true, description: 'Service the entrance points at.' }),
    port: t.exposeInt('port', { nullable: true, description: 'Port of that service.' }),
    icon: t.exposeString('icon', { nullable: true, description: 'Icon URL.' }),
    authLevel: t.exposeString('authLevel', {
      nullable: true,
      description: 'Who may open it: `public`, `private` or `internal`.',
    }),
    openMethod: t.exposeString('openMethod', {
      nullable: true,
      description: 'How a desktop opens it: `window`, `iframe`, `default` …',
    }),
    invisible: t.exposeBoolean('invisible', {
      description: 'Whether it is hidden from the desktop (false when not said).',
    }),
  }),
});

const VersionRef = builder.objectRef<VersionRecord>('CatalogAppVersion').implement({
  description: 'One release in the version history of a catalogue app.',
  fields: (t) => ({
    version: t.exposeString('version', { description: 'Chart version, as install and upgrade take it.' }),
    versionName: t.exposeString('versionName', {
      nullable: true,
      description: 'Version of the app itself, for display.',
    }),
    mergedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When this release was published; null when the source gave no readable time.',
      resolve: (record) => (record.mergedAt === null ? null : parseRfc3339Time(record.mergedAt)),
    }),
    upgradeDescription: t.string({
      nullable: true,
      description: `Release notes of this version. Counts ${RELEASE_NOTES_COST} in the query cost.`,
      extensions: costWeight(RELEASE_NOTES_COST),
      args: { locale: t.arg.string({ description: LOCALE_ARG_DESCRIPTION }) },
      resolve: (record, { locale }) => localizedValue(record.upgradeDescription, parseLocale(locale)),
    }),
  }),
});

const ChainPriceRef = builder.objectRef<ChainPrice>('CatalogAppChainPrice').implement({
  description: 'What to pay on one chain, and to whom.',
  fields: (t) => ({
    chain: t.exposeString('chain', { nullable: true, description: 'Chain, e.g. `optimism` or `eth`.' }),
    tokenSymbol: t.exposeString('tokenSymbol', { nullable: true, description: 'Token, e.g. `USDC` or `USDT`.' }),
    amount: t.exposeString('amount', {
      nullable: true,
      description: 'Amount in that token, as a decimal string (exact, never rounded).',
    }),
    receiveWallet: t.exposeString('receiveWallet', {
      nullable: true,
      description: 'Wallet address receiving the payment.',
    }),
  }),
});

const PriceDescriptionRef = builder.objectRef<PriceDescription>('CatalogAppPriceDescription').implement({
  description: 'How a product presents itself in one language.',
  fields: (t) => ({
    lang: t.exposeString('lang', { nullable: true, description: 'Language of these texts.' }),
    title: t.exposeString('title', { nullable: true, description: 'Product title.' }),
    description: t.exposeString('description', { nullable: true, description: 'Product description.' }),
    icon: t.exposeString('icon', { nullable: true, description: 'Icon URL.' }),
  }),
});

const ProductRef = builder.objectRef<Product>('CatalogAppProduct').implement({
  description: 'Something to buy for an app: the app itself (`CatalogAppPrice.paid`) or one of its products.',
  fields: (t) => ({
    productId: t.exposeString('productId', { nullable: true, description: 'Product id, as a purchase names it.' }),
    type: t.exposeString('type', {
      nullable: true,
      description: '`consumable` or `subscribe` for products; null for the one-time purchase of the app.',
    }),
    prices: t.field({
      type: [ChainPriceRef],
      description: 'Its price on each chain it may be paid on.',
      resolve: (item) => item.prices,
    }),
    descriptions: t.field({
      type: [PriceDescriptionRef],
      description: 'Its texts in every language given.',
      resolve: (item) => item.descriptions,
    }),
    description: t.field({
      type: PriceDescriptionRef,
      nullable: true,
      description: 'Its texts in one language (with the fallback of `locale`).',
      args: { locale: t.arg.string({ description: LOCALE_ARG_DESCRIPTION }) },
      resolve: (item, { locale }) => productDescription(item, parseLocale(locale)),
    }),
  }),
});

const PriceRef = builder.objectRef<Price>('CatalogAppPrice').implement({
  description: "A paid app's price configuration (`price.yaml`).",
  fields: (t) => ({
    developer: t.exposeString('developer', { nullable: true, description: 'Developer selling it.' }),
    paid: t.field({
      type: ProductRef,
      nullable: true,
      description: 'The purchase needed before install; null when only products are sold.',
      resolve: (price) => price.paid,
    }),
    products: t.field({
      type: [ProductRef],
      description: 'Further products sold for the app (in-app purchases, subscriptions).',
      resolve: (price) => price.products,
    }),
  }),
});

function localizedField(field: LocalizedField, description: string, cost: number) {
  return builder.objectField(CatalogAppRef, field, (t) =>
    t.string({
      nullable: true,
      description: `${description} Counts ${cost} in the query cost.`,
      extensions: costWeight(cost),
      args: { locale: t.arg.string({ description: LOCALE_ARG_DESCRIPTION }) },
      resolve: (app, { locale }) => entryText(app.entry, field, parseLocale(locale)),
    }),
  );
}

localizedField('fullDescription', 'Long description (may hold Markdown).', FULL_DESCRIPTION_COST);
localizedField('upgradeDescription', 'What changed in the latest version.', RELEASE_NOTES_COST);

builder.objectFields(CatalogAppRef, (t) => ({
  icon: t.string({ nullable: true, description: 'Icon URL.', resolve: (app) => entryString(app.entry, 'icon') }),
  featuredImage: t.string({
    nullable: true,
    description: 'Banner image URL.',
    resolve: (app) => entryString(app.entry, 'featuredImage'),
  }),
  promoteImages: t.stringList({
    description: 'Promotional image URLs.',
    resolve: (app) => entryStrings(app.entry, 'promoteImage'),
  }),
  screenshots: t.stringList({
    description: 'Screenshot URLs.',
    resolve: (app) => entryStrings(app.entry, 'screenshots'),
  }),
  tags: t.stringList({ description: 'Free-form tags.', resolve: (app) => entryStrings(app.entry, 'tags') }),
  developer: t.string({
    nullable: true,
    description: 'Who makes the app.',
    resolve: (app) => entryString(app.entry, 'developer'),
  }),
  locales: t.stringList({
    description: 'Locales the texts of the entry are written in.',
    resolve: (app) => entryLocales(app.entry),
  }),
  requirements: t.field({
    type: RequirementsRef,
    description: 'CPU, memory, disk and GPU memory the app needs.',
    resolve: (app) => entryRequirements(app.entry),
  }),
  supportedArchitectures: t.stringList({
    description: 'CPU architectures it runs on, e.g. `amd64`, `arm64`; empty when not said.',
    resolve: (app) => entryStrings(app.entry, 'supportArch'),
  }),
  entrances: t.field({
    type: [EntranceRef],
    description: 'Entrances (web UIs, APIs) the app declares.',
    resolve: (app) => entryEntrances(app.entry),
  }),
  versionHistory: t.field({
    type: [VersionRef],
    description: `Releases with their dates and notes, as the source lists them (newest first); ${VERSION_HISTORY_ITEMS} items in the query cost, whatever their number.`,
    extensions: assumedListSize(VERSION_HISTORY_ITEMS),
    resolve: (app) => entryVersionHistory(app.entry),
  }),
  price: t.field({
    type: PriceRef,
    nullable: true,
    description: 'What to pay, on which chain and to whom; null for a free app (see `paid`).',
    resolve: (app) => readPrice(app.price),
  }),
}));
