import { FALLBACK_LOCALE, isObject } from './catalogue-views.js';

/**
 * What a buyer pays for one product of a paid app, read from the catalogue's PriceConfig
 * (`price.yaml`, market-domain.md §4.6): on which chains, in which token, how much and to which
 * wallet. A wallet and a frontend act on these, so only complete prices are kept: an entry of the
 * price config that lacks its chain, token, amount or receiving wallet cannot be paid and is left
 * out. Token contract, decimals and icon are kept when the price config has them (this server
 * does not know tokens by itself).
 *
 * The terms are written into the payment's sign body when the wallet is asked to sign (under
 * `product`, in the price config's own spelling) and read back from there, so a payment keeps the
 * terms its buyer signed even when the catalogue changes later.
 */

export interface TokenPrice {
  chain: string;
  tokenSymbol: string;
  /** The token's contract address, when the price config names it. */
  tokenContract: string | null;
  /** The token's decimals, when the price config gives them. */
  tokenDecimals: number | null;
  tokenIcon: string | null;
  /** The amount in the token, exactly as the price config writes it (a decimal string). */
  amount: string;
  receiveWallet: string;
}

export interface ProductTerms {
  productId: string;
  /** `consumable` or `subscribe` for in-app products; null for the one-time purchase (`paid`). */
  type: string | null;
  /** The developer the product is bought from (the price config's `developer`). */
  developer: string | null;
  title: string | null;
  description: string | null;
  /** Every way to pay, in the price config's order; the first is the one shown as `price`. */
  prices: TokenPrice[];
}

type Json = Record<string, unknown>;

const text = (value: unknown): string | null => (typeof value === 'string' && value.trim() !== '' ? value : null);
const objects = (value: unknown): Json[] => (Array.isArray(value) ? value.filter(isObject) : []);

function amountOf(value: unknown): string | null {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? String(value) : null;
  return text(value);
}

function decimalsOf(value: unknown): number | null {
  const number = typeof value === 'string' && /^\d{1,3}$/.test(value.trim()) ? Number(value) : value;
  return typeof number === 'number' && Number.isInteger(number) && number >= 0 && number <= 255 ? number : null;
}

/** One price entry of price.yaml (`chain`, `token_symbol`, `product_price`, `receive_wallet`, …), if complete. */
function tokenPriceOf(entry: Json): TokenPrice | null {
  const chain = text(entry.chain);
  const tokenSymbol = text(entry.token_symbol);
  const amount = amountOf(entry.product_price);
  const receiveWallet = text(entry.receive_wallet);
  if (!chain || !tokenSymbol || !amount || !receiveWallet) return null;
  return {
    chain,
    tokenSymbol,
    tokenContract: text(entry.token_contract),
    tokenDecimals: decimalsOf(entry.token_decimals),
    tokenIcon: text(entry.token_icon),
    amount,
    receiveWallet,
  };
}

/** The description in en-US (else English, else the first one). */
function descriptionOf(product: Json): Json | null {
  const descriptions = objects(product.description);
  const lang = (d: Json) => text(d.lang)?.toLowerCase() ?? '';
  return (
    descriptions.find((d) => lang(d) === FALLBACK_LOCALE.toLowerCase()) ??
    descriptions.find((d) => lang(d).split(/[-_]/)[0] === 'en') ??
    descriptions[0] ??
    null
  );
}

function termsOfProduct(product: Json, productId: string, developer: string | null): ProductTerms {
  const description = descriptionOf(product);
  return {
    productId,
    type: text(product.type),
    developer,
    title: description ? text(description.title) : null,
    description: description ? text(description.description) : null,
    prices: objects(product.price).flatMap((entry) => tokenPriceOf(entry) ?? []),
  };
}

/**
 * The product a paid app sells: `paid.product_id`, else the first of `products`, else the app id.
 * A purchase is of this product, whichever source offers the app (the original keys purchases by
 * user, app and product): bought once, it counts wherever the same product is offered.
 */
export function productIdOf(priceConfig: unknown, appId: string): string {
  const price = (isObject(priceConfig) ? priceConfig : {}) as {
    paid?: { product_id?: unknown };
    products?: { product_id?: unknown }[];
  };
  const named = [price.paid?.product_id, Array.isArray(price.products) ? price.products[0]?.product_id : undefined];
  return (named.find((id) => typeof id === 'string' && id !== '') as string | undefined) ?? appId;
}

/**
 * The terms of `productId` in a PriceConfig: the product of that id (the one-time `paid` block
 * or one of `products`), else the `paid` block (a product id that fell back to the app id, see
 * PurchaseService). Null when the config prices no such product.
 */
export function productTermsOf(priceConfig: unknown, productId: string): ProductTerms | null {
  if (!isObject(priceConfig)) return null;
  const developer = text(priceConfig.developer);
  const paid = isObject(priceConfig.paid) ? priceConfig.paid : null;
  const product = [...(paid ? [paid] : []), ...objects(priceConfig.products)].find(
    (candidate) => text(candidate.product_id) === productId,
  );
  const chosen = product ?? paid;
  return chosen ? termsOfProduct(chosen, productId, developer) : null;
}

/** The terms in the price config's own spelling, as the sign body and the pushes carry them. */
export function termsToWire(terms: ProductTerms): Json {
  return {
    product_id: terms.productId,
    type: terms.type,
    developer: terms.developer,
    title: terms.title,
    description: terms.description,
    price: terms.prices.map((price) => ({
      chain: price.chain,
      token_symbol: price.tokenSymbol,
      ...(price.tokenContract ? { token_contract: price.tokenContract } : {}),
      ...(price.tokenDecimals !== null ? { token_decimals: price.tokenDecimals } : {}),
      ...(price.tokenIcon ? { token_icon: price.tokenIcon } : {}),
      product_price: price.amount,
      receive_wallet: price.receiveWallet,
    })),
  };
}

/** The terms a payment's sign body holds (under `product`); null for a payment written before terms existed. */
export function termsFromSignBody(signBody: unknown): ProductTerms | null {
  if (!isObject(signBody) || !isObject(signBody.product)) return null;
  const product = signBody.product;
  const productId = text(product.product_id);
  if (!productId) return null;
  return {
    productId,
    type: text(product.type),
    developer: text(product.developer),
    title: text(product.title),
    description: text(product.description),
    prices: objects(product.price).flatMap((entry) => tokenPriceOf(entry) ?? []),
  };
}

/** `token_info` of the frontend's payment data (market-domain.md §4.6): one entry per way to pay. */
export function tokenInfoOf(terms: ProductTerms | null): Json[] {
  return (terms?.prices ?? []).map((price) => ({
    chain: price.chain,
    token_symbol: price.tokenSymbol,
    token_decimals: price.tokenDecimals,
    ...(price.tokenContract ? { token_contract: price.tokenContract } : {}),
    token_amount: price.amount,
    ...(price.tokenIcon ? { token_icon: price.tokenIcon } : {}),
    receive_wallet: price.receiveWallet,
  }));
}

/** What a product credential manifest names: the product, its app and its issuer. */
export interface ManifestSubject {
  sourceId: string;
  appId: string;
  appName: string;
  productId: string;
  /** The developer's DID when known (it issues the credential), else their name. */
  issuer: string;
  terms: ProductTerms | null;
}

const SUBJECT_PATHS = (field: string) => [`$.credentialSubject.${field}`, `$.vc.credentialSubject.${field}`];

/**
 * The product credential manifest the wallet is asked to sign against: a DIF Credential Manifest
 * (https://identity.foundation/credential-manifest/) naming the developer as issuer, the licence
 * credential it issues (product id and payment transaction), and what the buyer presents to get
 * it (the product id). The original market fetched the manifest's id from each developer's
 * service; this server names it after the product (`urn:olares-market:<source>:<app>:<product>`),
 * so the same product always has the same manifest.
 */
export function productCredentialManifest(subject: ManifestSubject): Json {
  const id = `urn:olares-market:${[subject.sourceId, subject.appId, subject.productId].map(encodeURIComponent).join(':')}`;
  const title = subject.terms?.title ?? `${subject.appName} licence`;
  return {
    id,
    spec_version: 'https://identity.foundation/credential-manifest/spec/v1.0.0/',
    name: `${title} credential manifest`,
    description: `Licence of ${subject.appName} (product ${subject.productId}), issued once the developer confirms the payment`,
    issuer: { id: subject.issuer, name: subject.issuer },
    output_descriptors: [
      {
        id: `${subject.productId}-licence`,
        schema: `${id}:licence`,
        name: title,
        description: subject.terms?.description ?? `Licence of ${subject.appName}`,
        display: {
          title: { path: SUBJECT_PATHS('productId'), schema: { type: 'string' } },
          properties: [
            { label: 'Product ID', path: SUBJECT_PATHS('productId'), schema: { type: 'string' } },
            { label: 'txHash', path: SUBJECT_PATHS('txHash'), schema: { type: 'string' } },
          ],
        },
      },
    ],
    format: { jwt_vc: { alg: ['EdDSA'] } },
    presentation_definition: {
      id: `${subject.productId}-application`,
      name: `${title} application`,
      purpose: `Present the product id of ${subject.appName} to activate its licence from the payment`,
      input_descriptors: [
        {
          id: 'productId',
          name: 'Product ID',
          purpose: 'The product bought',
          format: { jwt_vc: { alg: ['EdDSA'] } },
          constraints: { fields: [{ path: SUBJECT_PATHS('productId') }], subject_is_issuer: 'preferred' },
        },
      ],
    },
  };
}
