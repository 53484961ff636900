import type { EnvVar, OperationRequest, OperationType } from '../../domain/operations.js';
import { type BackendResponse, keptData } from '../../domain/task-result.js';
import { isRecord } from '../../platform/json.js';
import type { Logger } from '../../platform/logger.js';
import { fetchJson, unreadBody, upstreamExcerpt } from '../../platform/outbound-http.js';
import { redactSecrets, redactSecretsIn, rememberSecret, secretEnvValues } from '../../platform/redact.js';
import { listedIdentity, operationStatuses, readListedApp, readListedMiddlewares, textOf } from './app-listing.js';
import { asEnvelope, describeHttpFailure, type Envelope, notTakenBy } from './http-answers.js';
import {
  type AppListing,
  type AppService,
  AppServiceError,
  type AppServiceErrorKind,
  type AppStateEvent,
  type NotTaken,
  type OperationStatus,
  type OperationTarget,
  type UnreadableListedApp,
} from './port.js';

/**
 * The real app service over HTTP. Every failure becomes an AppServiceError
 * whose message a person can read and act on; the task engine stores it on the failed task and
 * shows it to the user, so neither its message nor its details carry a secret: not our service
 * credential, not the buyer's credential or any other secret env the request carried, even when
 * the app service quotes the request back ("invalid request {…}"), and nothing secret-shaped
 * (src/platform/redact.ts).
 */

export interface HttpAppServiceOptions {
  baseUrl: string;
  /** Our own service credential, sent as `X-Authorization`. */
  token?: string;
  timeoutMs: number;
  /** Chart repository the app service downloads from, sent with install, clone and upgrade. */
  repoUrl: string;
  logger: Logger;
}

interface WireEnv {
  envName: string;
  value?: string;
  valueFrom?: { envName: string };
}

/**
 * The listings of every app (and middleware) outgrow any other answer's bounds (8 MiB, 1,000,000 JSON values): an
 * app is ~1 KB and ~90 values, and ~11,000 apps were refused (status correction and adoption stopped). The parse
 * blocks the event loop (2-core machine, 2026-12-07: 12,000 apps 72-118 ms, 100,000 apps 0.85-1.2 s). */
const WHOLE_CLUSTER = { maxResponseBytes: 128 * 1024 * 1024, maxJsonValues: 16_000_000 };

interface Call {
  method: 'GET' | 'POST';
  path: string;
  /** What we asked for, in words, e.g. "install of jellyfin"; every error message starts from it. */
  action: string;
  /** Whose request it is; listing apps is on nobody's behalf. */
  caller?: { userId: string; sourceId: string };
  body?: unknown;
  /** @default DEFAULT_MAX_RESPONSE_BYTES (8 MiB) and DEFAULT_MAX_JSON_VALUES (1,000,000) */
  limits?: typeof WHOLE_CLUSTER;
  /**
   * Secret values the body carries; redacted from whatever the app service answers, and remembered
   * before sending, because the state events that quote them arrive later, through another door.
   */
  secrets?: string[];
}

/** What a failure carries besides its kind and message (see HttpAppService.failure). */
interface FailureAbout {
  /** What the app service answered: status, code, data (the data cleaned of secrets). */
  details?: AppServiceError['details'] | undefined;
  /** The request's own secret values, redacted from the message and the data besides our token. */
  secrets?: string[] | undefined;
  /** Set when the app service certainly did not take the request (notTakenBy). */
  notTaken?: NotTaken | undefined;
}

/** Upstream names in a log line: enough to find the app, never a whole body. */
const MAX_LOGGED_TEXT = 128;

const VERBS: Record<OperationType, string> = {
  INSTALL: 'install',
  CLONE: 'clone',
  UPGRADE: 'upgrade',
  UNINSTALL: 'uninstall',
  STOP: 'stop',
  RESUME: 'resume',
};

/** The app service's path segment of each operation: a clone is an install under the clone's own name. */
const PATHS: Record<OperationType, string> = {
  INSTALL: 'install',
  CLONE: 'install',
  UPGRADE: 'upgrade',
  UNINSTALL: 'uninstall',
  STOP: 'suspend',
  RESUME: 'resume',
};

export class HttpAppService implements AppService {
  readonly kind = 'http';
  private readonly baseUrl: string;
  private readonly token: string | undefined;
  readonly requestTimeoutMs: number;
  private readonly repoUrl: string;
  private readonly logger: Logger;

  constructor(options: HttpAppServiceOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.token = options.token || undefined;
    // Redacted from every upstream text this process handles, not only this client's answers.
    rememberSecret(this.token);
    this.requestTimeoutMs = options.timeoutMs;
    this.repoUrl = options.repoUrl;
    this.logger = options.logger;
  }

  async start(operation: OperationRequest): Promise<{ opId: string | null; response: BackendResponse }> {
    const action = `${VERBS[operation.type]} of ${operation.appName}`;
    const secrets = secretEnvValues(operation.envs);
    const envelope = await this.send({
      method: 'POST',
      path: `/app-service/v1/apps/${encodeURIComponent(operation.appName)}/${PATHS[operation.type]}`,
      action,
      caller: operation,
      body: this.operationBody(operation),
      secrets,
    });
    this.ensureAccepted(envelope, action, secrets);
    const opId = opIdOf(envelope.data);
    // Without an op id the state events of this install cannot be told apart from an earlier one.
    if (opId === null && (operation.type === 'INSTALL' || operation.type === 'CLONE')) {
      throw this.failure('invalid_response', `app service accepted ${action} but returned no operation id`, {
        details: { status: envelope.status, code: envelope.code, data: envelope.data },
        secrets,
      });
    }
    // The envelope's message is already redacted; its data may quote the request back.
    const data = redactSecretsIn(keptData(envelope.data), this.secretsOf(secrets));
    return { opId, response: { code: envelope.code, message: envelope.message, data } };
  }

  async cancel(target: OperationTarget): Promise<void> {
    const action = `cancel of ${target.appName}`;
    const envelope = await this.send({
      method: 'POST',
      path: `/app-service/v1/apps/${encodeURIComponent(target.appName)}/cancel?type=operate`,
      action,
      caller: target,
      // The app service reads only the query; an empty JSON object (with its content type) is
      // what an HTTP stack between us that insists on a typed body for a POST accepts.
      body: {},
    });
    this.ensureAccepted(envelope, action);
  }

  async listApps(): Promise<AppStateEvent[]> {
    return (await this.listAppsInFull()).apps;
  }

  async listAppsInFull(): Promise<AppListing> {
    const action = 'listing of all apps';
    const listing = { method: 'GET', path: '/app-service/v1/all/apps', limits: WHOLE_CLUSTER } as const;
    const requestedAt = Date.now(); // what a time too far ahead counts as (reportTime): not the parse's
    const { status, body } = await this.request({ ...listing, action });
    let items: unknown[];
    if (Array.isArray(body)) {
      items = body;
    } else {
      const envelope = this.envelopeOf(status, body, action);
      this.ensureAccepted(envelope, action);
      if (!Array.isArray(envelope.data)) {
        throw this.failure('invalid_response', `app service answered ${action} without a list of apps`, {
          details: { status, code: envelope.code },
        });
      }
      items = envelope.data;
    }
    const apps: AppStateEvent[] = [];
    const unreadable: UnreadableListedApp[] = [];
    for (const item of items) {
      const read = readListedApp(item, requestedAt);
      if (typeof read === 'string') {
        const { appName, userId } = listedIdentity(item);
        unreadable.push({ userId, appName });
        this.logger.warn(
          { app: loggable(appName), owner: loggable(userId), problem: loggable(read) },
          'skipping an app the app service listed',
        );
      } else {
        apps.push(read);
      }
    }
    return { apps, unreadable };
  }

  /** Its middlewares (`GET /middlewares/status`) as listed apps: status correction's proof that they exist. */
  async listMiddlewares(): Promise<AppStateEvent[]> {
    const action = 'listing of middlewares';
    const path = '/app-service/v1/middlewares/status';
    const envelope = await this.send({ method: 'GET', path, action, limits: WHOLE_CLUSTER });
    this.ensureAccepted(envelope, action);
    const read = readListedMiddlewares(envelope.data);
    const { status, code } = envelope;
    if (!read)
      throw this.failure('invalid_response', `app service answered ${action} without a list`, {
        details: { status, code },
      });
    for (const problem of read.problems)
      this.logger.warn({ problem: loggable(problem) }, 'skipping a listed middleware');
    return read.middlewares;
  }

  /** Answered from one listing of every app: the app service has no per-operation query. */
  async lookup(targets: OperationTarget[]): Promise<OperationStatus[]> {
    return operationStatuses(await this.listAppsInFull(), targets);
  }

  async close(): Promise<void> {
    // Each call is its own fetch: there is no connection or timer to release.
  }

  private operationBody(operation: OperationRequest): Record<string, unknown> {
    const { userId, sourceId } = operation;
    const source = sourceId === 'upload' ? 'custom' : 'market';
    const envs = operation.envs.map(toWireEnv);
    const images = (operation.images ?? []).map(({ name, size }) => ({ name, size }));
    switch (operation.type) {
      case 'INSTALL':
        return { repoUrl: this.repoUrl, source, x_market_user: userId, x_market_source: sourceId, images, envs };
      case 'CLONE': {
        const clone = operation.clone;
        if (!clone) throw new Error(`clone of ${operation.appName} was started without its clone details`);
        return {
          repoUrl: this.repoUrl,
          source,
          x_market_user: userId,
          x_market_source: sourceId,
          images,
          envs,
          entrances: clone.entrances.map(({ name, title }) => ({ name, title })),
          rawAppName: clone.rawAppName,
          requestHash: clone.requestHash,
          title: clone.title,
        };
      }
      case 'UPGRADE':
        if (!operation.version) throw new Error(`upgrade of ${operation.appName} was started without a target version`);
        return {
          repoUrl: this.repoUrl,
          version: operation.version,
          x_market_user: userId,
          source,
          x_market_source: sourceId,
          images,
          envs,
        };
      case 'UNINSTALL':
        return { all: operation.uninstall?.all ?? false, deleteData: operation.uninstall?.deleteData ?? false };
      case 'STOP':
        // `all` stops the app for every user of a shared app: this API stops one user's app.
        return { all: false };
      case 'RESUME':
        return {};
    }
  }

  /** A call whose answer must be the `{ code, message, data }` envelope. */
  private async send(call: Call): Promise<Envelope> {
    const { status, body } = await this.request(call);
    return this.envelopeOf(status, body, call.action, call.secrets);
  }

  /** Sends one request and returns its parsed JSON body, or throws the AppServiceError that describes what went wrong. */
  private async request(call: Call): Promise<{ status: number; body: unknown }> {
    const headers: Record<string, string> = {};
    if (call.caller) {
      headers['X-Bfl-User'] = call.caller.userId;
      headers['X-Market-User'] = call.caller.userId;
      headers['X-Market-Source'] = call.caller.sourceId;
    }
    if (this.token) headers['X-Authorization'] = this.token;

    const outcome = await fetchJson({
      url: `${this.baseUrl}${call.path}`,
      method: call.method,
      headers,
      json: call.body,
      timeoutMs: this.requestTimeoutMs,
      // A POST starts or cancels an operation: never on a connection the app service may be closing
      // as idle, where a broken connection fails the task (A CONNECTION OF ITS OWN, outbound-agent.ts).
      reuseConnection: call.method === 'GET',
      secrets: this.secretsOf(call.secrets),
      ...call.limits,
    });
    if (outcome.kind === 'timeout') {
      throw this.failure('timeout', `app service did not answer ${call.action} within ${this.requestTimeoutMs} ms`);
    }
    if (outcome.kind === 'unreachable') {
      const message = `app service is unreachable for ${call.action}: ${outcome.problem}`;
      throw this.failure('unavailable', message, { notTaken: notTakenBy(outcome) });
    }
    const { status, durationMs } = outcome;
    this.logger.debug({ method: call.method, path: call.path, status, durationMs }, 'app service call');
    if (outcome.kind === 'too_large' || outcome.kind === 'too_many_values') {
      const message = `app service answered ${call.action} with ${unreadBody(outcome)}`;
      throw this.failure('invalid_response', message, { details: { status }, secrets: call.secrets });
    }

    const { body, isJson } = outcome;
    if (outcome.ok) {
      if (isJson) return { status, body };
      const message = `app service answered ${call.action} with a body that is not JSON`;
      throw this.failure('invalid_response', message, { details: { status }, secrets: call.secrets });
    }
    const envelope = isJson ? asEnvelope(status, body, this.secretsOf(call.secrets)) : null;
    const details = envelope ? { status, code: envelope.code, data: envelope.data } : { status };
    const explanation = envelope?.message ? `: ${envelope.message}` : '';
    const [kind, message] = describeHttpFailure(status, call.action, explanation);
    throw this.failure(kind, message, { details, secrets: call.secrets, notTaken: notTakenBy(outcome) });
  }

  private envelopeOf(status: number, body: unknown, action: string, secrets?: string[]): Envelope {
    const envelope = asEnvelope(status, body, this.secretsOf(secrets));
    if (envelope) return envelope;
    const message = `app service answered ${action} without the {code, message, data} envelope`;
    throw this.failure('invalid_response', message, { details: { status }, secrets });
  }

  /** HTTP 200 with another code is the app service saying no, e.g. 422 when env values are missing. */
  private ensureAccepted(envelope: Envelope, action: string, secrets?: string[]): void {
    if (envelope.code === 200) return;
    const explanation = envelope.message || `code ${envelope.code}`;
    throw this.failure('rejected', `app service rejected ${action}: ${explanation}`, {
      details: { status: envelope.status, code: envelope.code, data: envelope.data },
      secrets,
    });
  }

  /** Our token and the request's own secrets: what a failure's text is cleaned of by value. */
  private secretsOf(secrets: string[] = []): string[] {
    return this.token ? [this.token, ...secrets] : secrets;
  }

  /**
   * Every error goes through here, so neither its message nor the data shown to the user can carry
   * a secret, even when the app service echoes the request back. (The envelope's message was
   * already redacted before it was cut to length, so a cut cannot leave a piece behind.)
   */
  private failure(kind: AppServiceErrorKind, message: string, about: FailureAbout = {}): AppServiceError {
    const { details, secrets, notTaken } = about;
    const known = this.secretsOf(secrets);
    // Cut before the walk: redacting all of an 8 MiB answer (2,000 envs of 4 KB) blocked the
    // event loop for 0.5–0.7 s here.
    const data = details?.data === undefined ? undefined : redactSecretsIn(keptData(details.data), known);
    return new AppServiceError(
      kind,
      redactSecrets(message, known),
      details && { ...details, ...(data === undefined ? {} : { data }) },
      notTaken,
    );
  }
}

function toWireEnv(env: EnvVar): WireEnv {
  return {
    envName: env.name,
    ...(env.value == null ? {} : { value: env.value }),
    ...(env.valueFrom == null ? {} : { valueFrom: { envName: env.valueFrom } }),
  };
}

/** Upstream text for a log line: bounded, and without secrets. */
function loggable(value: unknown): string | null {
  const text = textOf(value);
  // Only a bounded prefix is worth redacting for a log line this short.
  return text === null ? null : upstreamExcerpt(text.slice(0, 4 * MAX_LOGGED_TEXT), MAX_LOGGED_TEXT);
}

function opIdOf(data: unknown): string | null {
  return isRecord(data) && typeof data.opID === 'string' && data.opID !== '' ? data.opID : null;
}
