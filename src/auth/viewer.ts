import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { checkIdArgument, ForbiddenError, UnauthenticatedError } from '../domain/errors.js';
import { type Config, invalidSetting } from '../platform/config.js';
import { JwtRejected, JwtVerifier } from './jwt.js';
import { MAX_USER_ID_LENGTH, userIdProblem } from './user-id.js';

/** Who is asking. Every service call that reads or changes user data takes one. */
export interface Viewer {
  userId: string;
  isAdmin: boolean;
  /** When the credential stops being valid (ms since the epoch), for credentials that expire (JWT). */
  expiresAt?: number;
}

/** The viewer of local development mode (no authentication configured). */
export const LOCAL_ADMIN: Viewer = Object.freeze({ userId: 'admin', isAdmin: true });

/**
 * What a request presents. Only the transport decides where each part comes from: the gateway
 * header is read from the HTTP request (or the WebSocket upgrade request), which a gateway can
 * strip and set; never from anything the client writes inside the protocol (graphql-ws
 * `connectionParams`), which no gateway sees.
 */
export interface Credentials {
  /** `Authorization` header, or graphql-ws `connectionParams.authorization`: a credential we verify. */
  authorization: string | null | undefined;
  /** The AUTH_USER_HEADER value of the HTTP or upgrade request. */
  gatewayUser: string | null | undefined;
}

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

/**
 * A header of Fetch-API headers (Yoga's, which are not always the global class) or of Node's
 * header object. A function of its own, not a closure per request: under tsx each closure made
 * costs a defineProperty of its name.
 */
function headerValue(headers: Pick<Headers, 'get'> | IncomingHttpHeaders, name: string): string | null {
  if (typeof headers.get === 'function') return (headers as Pick<Headers, 'get'>).get(name);
  const value = (headers as IncomingHttpHeaders)[name.toLowerCase()];
  return typeof value === 'string' ? value : null;
}

/**
 * The viewers of AUTH_TOKENS, by the hash of each token. Parsed by loadConfig, which knows nothing
 * of user ids: what no client may be known by is refused here, at start, in the form of
 * loadConfig's errors (never echoing a token). And a token given twice, which made the last entry
 * win (`alice:user:T,bob:admin:T`: T was bob, an admin).
 */
function tokenTable(tokens: Config['auth']['tokens']): Map<string, Viewer> {
  const table = new Map<string, Viewer>();
  const entryOf = new Map<string, number>();
  for (const [index, { userId, role, token }] of tokens.entries()) {
    const entry = `entry ${index + 1}`;
    const problem = userIdProblem(userId);
    if (problem === 'reserved') {
      throw invalidSetting('AUTH_TOKENS', `${entry}: user id "${userId}" is reserved for the server's own records`);
    }
    if (problem === 'malformed') {
      throw invalidSetting('AUTH_TOKENS', `${entry}: a user id is 1 to 128 letters, digits, _ . @ -`);
    }
    const key = sha256(token);
    const first = entryOf.get(key);
    if (first !== undefined) throw invalidSetting('AUTH_TOKENS', `${entry} has the token of entry ${first}`);
    entryOf.set(key, index + 1);
    table.set(key, { userId, isAdmin: role === 'admin' });
  }
  return table;
}

/**
 * Resolves the viewer of a request. `Authorization: Bearer <credential>` wins: a static token
 * (AUTH_TOKENS) or a JWT (AUTH_JWT_*); a presented credential that is not accepted is rejected,
 * never downgraded to another identity. Without one, the trusted gateway header (AUTH_USER_HEADER)
 * when configured, else — only when no authentication is configured at all — the local admin.
 */
export class Authenticator {
  /** Keyed by the token's hash, so the secrets themselves are not kept in a lookup table. */
  private readonly tokens: Map<string, Viewer>;
  private readonly jwt: JwtVerifier | null;

  constructor(private readonly auth: Config['auth']) {
    this.tokens = tokenTable(auth.tokens);
    this.jwt = auth.jwt ? new JwtVerifier(auth.jwt) : null;
  }

  async authenticate({ authorization, gatewayUser }: Credentials): Promise<Viewer> {
    if (this.auth.localDevelopment) return LOCAL_ADMIN;
    if (authorization) return this.verify(authorization);
    if (this.auth.userHeader && gatewayUser?.trim()) {
      const userId = gatewayUser.trim();
      const problem = userIdProblem(userId);
      if (problem === 'malformed') throw new UnauthenticatedError(`${this.auth.userHeader} is not a valid user id`);
      if (problem === 'reserved') {
        throw new UnauthenticatedError(`${this.auth.userHeader} names a user id reserved for the server`);
      }
      return { userId, isAdmin: this.auth.adminUsers.includes(userId) };
    }
    // The gateway header is not named to anonymous clients: it is the one thing a client that
    // found a way past the gateway (a direct port, a location that does not clear it) would need.
    throw new UnauthenticatedError(
      this.auth.userHeader
        ? 'Authentication required: send "Authorization: Bearer <token>", or come through the gateway'
        : 'Authentication required: send "Authorization: Bearer <token>"',
    );
  }

  /** The credentials of an HTTP request (or a WebSocket upgrade request). */
  credentialsOf(headers: Pick<Headers, 'get'> | IncomingHttpHeaders): Credentials {
    return {
      authorization: headerValue(headers, 'authorization'),
      gatewayUser: this.auth.userHeader ? headerValue(headers, this.auth.userHeader) : null,
    };
  }

  fromHeaders(headers: Pick<Headers, 'get'> | IncomingHttpHeaders): Promise<Viewer> {
    return this.authenticate(this.credentialsOf(headers));
  }

  private async verify(authorization: string): Promise<Viewer> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match) throw new UnauthenticatedError('Authorization must be "Bearer <token>"');
    const credential = match[1] as string;
    const viewer = this.tokens.get(sha256(credential));
    if (viewer) return viewer;
    if (this.jwt && credential.split('.').length === 3) {
      try {
        const { userId, isAdmin, expiresAt } = await this.jwt.verify(credential);
        return expiresAt === undefined ? { userId, isAdmin } : { userId, isAdmin, expiresAt };
      } catch (error) {
        if (error instanceof JwtRejected) throw new UnauthenticatedError(error.message);
        throw error;
      }
    }
    throw new UnauthenticatedError('Invalid or expired token');
  }
}

/**
 * The user whose data a read may cover. A non-admin always reads their own data; naming another
 * user is refused rather than silently ignored. An admin reads everyone's unless a user is named.
 * An empty name is no user's and is refused, as a longer one than any user has (`argument` is
 * where the request gave it: `userId`, `filter.userId`): read as "everyone" by the runtime state
 * and as "the user ''" by the lists, it gave an admin a snapshot of every app, lists of none, and
 * live views that never moved.
 */
export function userScope(
  viewer: Viewer,
  requestedUserId?: string | null,
  argument = 'filter.userId',
): string | undefined {
  checkIdArgument(argument, requestedUserId, MAX_USER_ID_LENGTH);
  if (viewer.isAdmin) return requestedUserId ?? undefined;
  if (requestedUserId != null && requestedUserId !== viewer.userId) {
    throw new ForbiddenError("Only admins may read another user's data (filter userId)");
  }
  return viewer.userId;
}

/** Whether the viewer may see a row owned by `ownerId`. */
export function canSee(viewer: Viewer, ownerId: string): boolean {
  return viewer.isAdmin || viewer.userId === ownerId;
}
