/**
 * The app service: the cluster controller that really installs, upgrades and removes apps. The
 * task engine talks to it only through this interface; there are two implementations:
 * SimulatedAppService (the embedded default) and HttpAppService (APP_SERVICE_URL).
 *
 * Operations are asynchronous on the app service: `start` returns once it accepted the
 * operation (with its op id), and progress, success and failure arrive later as state events.
 */
import type { AppEntrance } from '../../domain/app-entrance.js';
import type { OperationRequest, OperationType } from '../../domain/operations.js';

export type { AppEntrance };

import type { BackendResponse } from '../../domain/task-result.js';

export interface OperationTarget {
  userId: string;
  sourceId: string;
  appName: string;
  type: OperationType;
  opId: string | null;
}

/** One state report of the app service for one app of one user (the fields of its state event). */
export interface AppStateEvent {
  userId: string;
  /** Market source of the app (`marketSource` on the wire). */
  sourceId: string;
  appName: string;
  rawAppName?: string | null;
  opId?: string | null;
  opType?: string | null;
  /** e.g. pending, downloading, installing, initializing, running, uninstalled, installFailed … */
  state: string;
  /** Progress text, e.g. "42.5" while downloading. */
  progress?: string | null;
  reason?: string | null;
  message?: string | null;
  /** When the app service produced the event; older events never overwrite newer ones. */
  createTime: Date;
  /** The app's entrances, when the report carries them; undefined/null keeps the stored ones. */
  entrances?: AppEntrance[] | null;
  /**
   * Only in the app service's lists: the app is one of its own (a system app, or a system
   * service), not one installed from a market; status correction neither adds nor removes it.
   */
  system?: boolean;
  /**
   * Only in the app service's lists, where it says them: the installed chart's version, title and
   * configuration type, which an app status correction finds (`appeared`) is stored with, so that
   * it can be stopped, upgraded and uninstalled like one installed through the market.
   */
  listedVersion?: string | null;
  listedTitle?: string | null;
  listedCfgType?: string | null;
}

/** An item of the app service's list that could not be read, by whatever of its owner and name it says. */
export interface UnreadableListedApp {
  /** null: it says no owner (any user's app of that name may be it). */
  userId: string | null;
  /** null: it says no name (any app of that owner may be it). */
  appName: string | null;
}

/** The app service's list of apps, and the items of it that could not be read (see listAppsInFull). */
export interface AppListing {
  apps: AppStateEvent[];
  unreadable: UnreadableListedApp[];
}

export type AppServiceErrorKind =
  | 'unavailable' // network error or 5xx
  | 'timeout'
  | 'not_found' // 404
  | 'unauthorized' // 401/403
  | 'invalid_response' // not the documented envelope
  | 'rejected'; // a business error: HTTP 200 with code ≠ 200, e.g. 422 missing env values

/** A failure that proves the app service did not take the request (see notTakenBy in http-answers.ts). */
export interface NotTaken {
  /** How long it asked us to wait before sending it again (`Retry-After`); null when it did not say. */
  retryAfterMs: number | null;
}

export class AppServiceError extends Error {
  override name = 'AppServiceError';
  constructor(
    readonly kind: AppServiceErrorKind,
    message: string,
    /**
     * The app service's own code and data (e.g. the 422 `appenv` payload), passed to the user: an
     * implementation redacts secrets from it (and from the message) before throwing.
     */
    readonly details: { status?: number; code?: number; data?: unknown } = {},
    /** Set only when the app service certainly did not take the request: sending it again is safe. */
    readonly notTaken?: NotTaken,
  ) {
    super(message);
  }
}

/** What the app service says of an operation it accepted earlier (see AppService.lookup). */
export type OperationStatus =
  /** It knows the operation: where it stands, as a state report (possibly its end). */
  | { known: true; report: AppStateEvent }
  /** It has no record of it, so nothing will ever report its end: why, in words (stored on the failed task). */
  | { known: false; reason: string }
  /** Its answer cannot tell now (an item of its list it could not read may be the app): asked again. */
  | { known: null; reason: string };

export interface AppService {
  readonly kind: 'simulated' | 'http';
  /**
   * The longest one request to it stays open (the HTTP one's APP_SERVICE_TIMEOUT_MS): the `start`
   * of a task sent longer ago than that has ended, answered or not. Absent when a start cannot
   * outlive the process that made it (the simulated one runs in that process).
   */
  readonly requestTimeoutMs?: number;
  /**
   * Asks the app service to run an operation; resolves once accepted with its op id and the app
   * service's answer (secrets redacted), which the task keeps in its result.
   */
  start(operation: OperationRequest): Promise<{ opId: string | null; response: BackendResponse }>;
  /** Asks it to cancel the running operation of an app. */
  cancel(target: OperationTarget): Promise<void>;
  /** Every app it knows, as state events (for reconciliation and status correction). */
  listApps(): Promise<AppStateEvent[]>;
  /**
   * The same list with the items it could not read: status correction never takes an app whose
   * list entry was unreadable for gone.
   */
  listAppsInFull(): Promise<AppListing>;
  /**
   * Its middlewares (`/middlewares/status`), where it can list them: status correction takes a
   * listed middleware as proof that it exists (their status is not the app-state vocabulary).
   */
  listMiddlewares?(): Promise<AppStateEvent[]>;
  /**
   * Where operations it accepted earlier stand, one answer per target, in order: how the engine
   * follows a task it adopted from a stopped or dead instance, whose state reports may have gone
   * to that instance. Throws AppServiceError when it cannot be asked now.
   */
  lookup(targets: OperationTarget[]): Promise<OperationStatus[]>;
  close(): Promise<void>;
}

/** Where app services deliver state events (the task engine): false when it could not apply one. */
export type AppStateSink = (event: AppStateEvent) => Promise<boolean>;
