import type { ProductTerms, TokenPrice } from '../domain/payment-terms.js';
import { builder } from './builder.js';
import { PaymentRef } from './refs.js';

// What the buyer pays for a payment's product (domain/payment-terms.ts): the terms the wallet was
// asked to sign, else the catalogue's price config now.

const PaymentTokenRef = builder.objectRef<TokenPrice>('PaymentToken').implement({
  description: 'The token a price is paid in.',
  fields: (t) => ({
    symbol: t.exposeString('tokenSymbol', { description: 'Token symbol, e.g. `USDC`.' }),
    contract: t.exposeString('tokenContract', {
      nullable: true,
      description: "The token's contract address on the chain; null when the price config does not name it.",
    }),
    decimals: t.exposeInt('tokenDecimals', {
      nullable: true,
      description: "The token's decimals; null when the price config does not give them.",
    }),
    icon: t.exposeString('tokenIcon', {
      nullable: true,
      description: "The token's icon URL, when the price config has one.",
    }),
  }),
});

const PaymentPriceRef = builder.objectRef<TokenPrice>('PaymentPrice').implement({
  description:
    "One way to pay for a product: how much of which token, on which chain, to which wallet. Only complete prices of the app's price config are listed.",
  fields: (t) => ({
    amount: t.exposeString('amount', {
      description: 'The amount in the token, exactly as the price config writes it (a decimal string, e.g. `9.99`).',
    }),
    token: t.field({ type: PaymentTokenRef, description: 'The token paid in.', resolve: (price) => price }),
    chain: t.exposeString('chain', { description: 'The chain to pay on, e.g. `optimism`.' }),
    receivingWallet: t.exposeString('receiveWallet', {
      description: "The developer's wallet address that receives the payment.",
    }),
  }),
});

const PaymentProductRef = builder.objectRef<ProductTerms>('PaymentProduct').implement({
  description: 'The product a payment buys, as its price config describes it.',
  fields: (t) => ({
    productId: t.exposeString('productId', { description: 'Product id.' }),
    type: t.exposeString('type', {
      nullable: true,
      description: '`consumable` or `subscribe` for in-app products; null for the one-time purchase of the app.',
    }),
    title: t.exposeString('title', { nullable: true, description: 'Product title (en-US, else the first language).' }),
    description: t.exposeString('description', {
      nullable: true,
      description: 'Product description (en-US, else the first language).',
    }),
    developer: t.exposeString('developer', {
      nullable: true,
      description: 'The developer the product is bought from.',
    }),
    prices: t.field({
      type: [PaymentPriceRef],
      description: 'Every way to pay for it, in the price config order.',
      resolve: (terms) => terms.prices,
    }),
  }),
});

builder.objectFields(PaymentRef, (t) => ({
  product: t.field({
    type: PaymentProductRef,
    nullable: true,
    description:
      'The product bought: the terms the wallet was asked to sign, else those of the catalogue now; null when neither prices it.',
    resolve: (payment, _args, ctx) => ctx.services.payments.termsOf(payment),
  }),
  price: t.field({
    type: PaymentPriceRef,
    nullable: true,
    description:
      "What to pay: the product's first price (all of them: `product.prices`); null when the product has no complete price.",
    resolve: async (payment, _args, ctx) => (await ctx.services.payments.termsOf(payment))?.prices[0] ?? null,
  }),
}));
