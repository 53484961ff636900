import { isRecord } from '../../platform/json.js';
import type { Logger } from '../../platform/logger.js';
import { fetchJson, unreadBody, upstreamExcerpt } from '../../platform/outbound-http.js';
import { redactSecrets, rememberSecret } from '../../platform/redact.js';
import { type DeveloperInfo, type DeveloperService, DeveloperServiceError, type GrantResult } from './port.js';

/**
 * The developer's own credential service over HTTP. Every developer runs one at an address
 * derived from their name, so the URL is a template. Failures to get an answer at all throw
 * DeveloperServiceError (the payment poller retries those later); answers the developer did
 * give are mapped to a GrantResult. The buyer's JWS is a bearer proof of purchase: it is sent in
 * the body only and appears in no error message or log line, even when the developer echoes it;
 * neither does the credential it grants, nor anything secret-shaped (src/platform/redact.ts).
 */

export interface HttpDeveloperServiceOptions {
  /** Contains `{developer}`, e.g. `https://4c94e3111.{developer}/api/grpc/AuthService/ActivateAndGrant`. */
  urlTemplate: string;
  timeoutMs: number;
  logger: Logger;
}

const PLACEHOLDER = '{developer}';

/** Codes the developer uses for a signature it cannot accept: the buyer has to sign again. */
const RESIGN_CODES = new Set([1100, 1101, 1604]);
const NO_RECORD_TEXT = ['no record', 'not found', 'no data'];
const RESIGN_TEXT = ['invalid', 'expired', 'signature'];

/** Enough of an upstream explanation to act on, without copying a whole error page into a message. */
const MAX_UPSTREAM_MESSAGE = 200;

/**
 * The longest credential accepted. A verifiable credential is a signed JWT or a JSON-LD document
 * with a proof: a few KB. It is stored with the payment, pushed to the wallet, sent to the app
 * service as an env and remembered for redaction, so one of megabytes is refused like any other bad
 * answer: an 8,000,000-character one (under the generic 8 MiB answer cap) held the event loop for
 * seconds and outlasted the 5 s transaction that stores it.
 */
export const MAX_CREDENTIAL_LENGTH = 16_384;

/** The developer's whole answer: the credential with room for JSON escapes and an envelope. */
export const MAX_DEVELOPER_RESPONSE_BYTES = 64 * 1024;

export class HttpDeveloperService implements DeveloperService {
  readonly kind = 'http';
  private readonly urlTemplate: string;
  private readonly timeoutMs: number;
  private readonly logger: Logger;

  constructor(options: HttpDeveloperServiceOptions) {
    // Checked here so a wrong setting stops the server at start rather than failing every purchase later.
    if (!options.urlTemplate.includes(PLACEHOLDER)) {
      throw new Error(`developer service URL template must contain ${PLACEHOLDER}`); // never echoed: it may hold a secret
    }
    if (!URL.canParse(fillTemplate(options.urlTemplate, 'example'))) {
      throw new Error('developer service URL template is not a URL');
    }
    this.urlTemplate = options.urlTemplate;
    this.timeoutMs = options.timeoutMs;
    this.logger = options.logger;
  }

  /**
   * There is no DID gate this server can reach, so the identity is not looked up: the developer
   * service resolves and checks it itself when it grants. A did:web derived from the name keeps
   * the payment record readable; it is never used to verify anything.
   */
  async lookup(developerName: string): Promise<DeveloperInfo | null> {
    return { name: developerName, did: `did:web:${developerName.toLowerCase()}`, rsaPubKey: null };
  }

  async activateAndGrant(request: { developerName: string; productId: string; jws: string }): Promise<GrantResult> {
    const { developerName, productId, jws } = request;
    // Remembered first, so that wherever it is quoted back later (another upstream's error, even
    // after this call failed before sending) it is redacted too.
    rememberSecret(jws);
    const who = `developer service of ${developerName}`;
    const fail = (message: string) => new DeveloperServiceError(redactSecrets(message, [jws]));
    const url = fillTemplate(this.urlTemplate, developerName);
    if (developerName.trim() === '' || !URL.canParse(url)) {
      // Not the URL itself: the template may hold a token (DEVELOPER_SERVICE_URL_TEMPLATE).
      throw fail(`${who} has no valid URL (the developer's name does not fit the URL template)`);
    }

    // The jws travels in the body only.
    const outcome = await fetchJson({
      url,
      method: 'POST',
      json: { jws },
      timeoutMs: this.timeoutMs,
      maxResponseBytes: MAX_DEVELOPER_RESPONSE_BYTES,
      secrets: [jws],
    });
    if (outcome.kind === 'timeout') throw fail(`${who} did not answer within ${this.timeoutMs} ms`);
    if (outcome.kind === 'unreachable') throw fail(`${who} is unreachable: ${outcome.problem}`);
    const { status, durationMs } = outcome;
    if (outcome.kind === 'too_large' || outcome.kind === 'too_many_values') {
      this.logger.debug({ developer: developerName, productId, status, durationMs }, 'developer service call');
      throw fail(`${who} answered HTTP ${status} with ${unreadBody(outcome)}`);
    }
    const { body, isJson } = outcome;
    if (!outcome.ok) {
      this.logger.debug({ developer: developerName, productId, status, durationMs }, 'developer service call');
      const explanation = isJson ? upstreamExcerpt(errorTextOf(body), MAX_UPSTREAM_MESSAGE, [jws]) : '';
      throw fail(`${who} answered HTTP ${status}${explanation ? `: ${explanation}` : ''}`);
    }
    if (!isJson) throw fail(`${who} answered HTTP ${status} with a body that is not JSON`);
    if (!isRecord(body)) throw fail(`${who} answered HTTP ${status} with JSON that is not an object`);

    const { result, code } = classify(body);
    if (result.outcome === 'granted' && result.vc.length > MAX_CREDENTIAL_LENGTH) {
      this.logger.debug({ developer: developerName, productId, status, code, durationMs }, 'developer service call');
      throw fail(
        `${who} answered with a credential of ${result.vc.length} characters, more than ${MAX_CREDENTIAL_LENGTH}`,
      );
    }
    if (result.outcome === 'granted') rememberSecret(result.vc);
    this.logger.debug(
      { developer: developerName, productId, status, code, outcome: result.outcome, durationMs },
      'developer service call',
    );
    return result;
  }
}

/**
 * The developer's answer as the original market server read it: code 0 grants (or has no record
 * yet, without a credential), the re-sign codes ask for a new signature, any other code means not
 * paid yet; without a code, the wording decides. With the code it was based on, for the log.
 */
function classify(body: Record<string, unknown>): { result: GrantResult; code: number | null } {
  const code = codeOf(body.code);
  const vc = credentialOf(body);
  if (code === 0 || (code === null && vc !== null)) {
    return { result: vc === null ? { outcome: 'no_record' } : { outcome: 'granted', vc }, code };
  }
  if (code !== null) {
    // Any code but 0 and the re-sign ones means "not (yet) paid as far as the developer knows", so polling goes on.
    return { result: { outcome: RESIGN_CODES.has(code) ? 'need_resign' : 'no_record' }, code };
  }
  const text = errorTextOf(body).toLowerCase();
  if (NO_RECORD_TEXT.some((phrase) => text.includes(phrase))) return { result: { outcome: 'no_record' }, code };
  if (RESIGN_TEXT.some((phrase) => text.includes(phrase))) return { result: { outcome: 'need_resign' }, code };
  return { result: { outcome: 'no_record' }, code };
}

/** The code as a number; gRPC gateways sometimes write it as a string. Null when there is none. */
function codeOf(value: unknown): number | null {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && /^-?\d+$/.test(value.trim())) return Number(value.trim());
  return null;
}

function credentialOf(body: Record<string, unknown>): string | null {
  const candidates = [body.verifiableCredential, isRecord(body.data) ? body.data.verifiableCredential : undefined];
  for (const candidate of candidates) {
    if (typeof candidate === 'string' && candidate.trim() !== '') return candidate;
  }
  return null;
}

/** The developer's explanation, from `error` and `message`, whichever it wrote. */
function errorTextOf(body: unknown): string {
  if (!isRecord(body)) return '';
  const texts = [body.error, body.message].filter((text): text is string => typeof text === 'string' && text !== '');
  return texts.join(': ').trim();
}

function fillTemplate(template: string, developerName: string): string {
  return template.replaceAll(PLACEHOLDER, encodeURIComponent(developerName.toLowerCase()));
}
