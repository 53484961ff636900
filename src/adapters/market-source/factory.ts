import { BundledCatalogue } from './bundled.js';
import { HttpMarketSource, type MarketSourceRetry } from './http.js';
import { type MarketSourceClient, MarketSourceError } from './port.js';

export interface MarketSourceSettings {
  /** The catalogue file read for a source without a base URL (or with a `bundled:` one). */
  bundledCataloguePath: string;
  /** The Olares version sent to sources as `version=`. */
  version: string;
  /** Per call to a source. */
  timeoutMs: number;
  /** Largest answer read from a source, and largest bundled file. */
  maxResponseBytes: number;
}

/**
 * The client for a remote source's base URL: none (null or empty) or `bundled:` reads the
 * bundled catalogue file, `http(s)://…` speaks the market-source protocol. The file is always the
 * configured one, whatever follows `bundled:`, so a source URL cannot make the server read
 * another file. Anything else throws MarketSourceError('unreachable').
 */
export function createMarketSourceClient(
  baseUrl: string | null,
  settings: MarketSourceSettings,
  /** Told of each HTTP call asked again after its connection failed. */
  onRetry?: (retry: MarketSourceRetry) => void,
): MarketSourceClient {
  const url = baseUrl?.trim() ?? '';
  if (isBundledUrl(url)) {
    return new BundledCatalogue({ path: settings.bundledCataloguePath, maxBytes: settings.maxResponseBytes });
  }
  if (!/^https?:\/\//i.test(url)) throw new MarketSourceError('unreachable', 'unsupported URL scheme');
  return new HttpMarketSource({
    baseUrl: url,
    version: settings.version,
    timeoutMs: settings.timeoutMs,
    maxResponseBytes: settings.maxResponseBytes,
    ...(onRetry ? { onRetry } : {}),
  });
}

/** Whether a source's base URL means the bundled catalogue file: none, empty or `bundled:…`. */
export function isBundledUrl(baseUrl: string | null): boolean {
  const url = baseUrl?.trim() ?? '';
  return url === '' || /^bundled:/i.test(url);
}
