import { createHash } from 'node:crypto';
import type { Config } from '../config.js';
import { ForbiddenError, UnauthenticatedError } from '../services/errors.js';

/** Who is asking. Every service call that reads or changes user data takes one. */
export interface Viewer {
  userId: string;
  isAdmin: boolean;
}

/** The viewer of local development mode (no authentication configured). */
export const LOCAL_ADMIN: Viewer = Object.freeze({ userId: 'admin', isAdmin: true });

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

/**
 * Resolves the viewer of a request from its headers:
 * `Authorization: Bearer <token>` (tokens from AUTH_TOKENS), else the trusted gateway header
 * (AUTH_USER_HEADER) when configured, else — only when no authentication is configured at all —
 * the local admin. A presented but unknown token is rejected, never downgraded.
 */
export class Authenticator {
  /** Keyed by the token's hash, so the secrets themselves are not kept in a lookup table. */
  private readonly tokens: Map<string, Viewer>;

  constructor(private readonly auth: Config['auth']) {
    this.tokens = new Map(auth.tokens.map((t) => [sha256(t.token), { userId: t.userId, isAdmin: t.role === 'admin' }]));
  }

  /** `authorization` is the Authorization header or graphql-ws `connectionParams.authorization`. */
  authenticate(authorization: string | null | undefined, gatewayUser?: string | null): Viewer {
    if (this.auth.localDevelopment) return LOCAL_ADMIN;
    if (authorization) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      if (!match) throw new UnauthenticatedError('Authorization header must be "Bearer <token>"');
      const viewer = this.tokens.get(sha256(match[1] as string));
      if (!viewer) throw new UnauthenticatedError('Invalid or expired token');
      return viewer;
    }
    if (this.auth.userHeader && gatewayUser?.trim()) {
      const userId = gatewayUser.trim();
      return { userId, isAdmin: this.auth.adminUsers.includes(userId) };
    }
    throw new UnauthenticatedError(
      this.auth.userHeader
        ? `Authentication required: send "Authorization: Bearer <token>" or the ${this.auth.userHeader} header`
        : 'Authentication required: send "Authorization: Bearer <token>"',
    );
  }

  fromHeaders(headers: Headers): Viewer {
    const gatewayUser = this.auth.userHeader ? headers.get(this.auth.userHeader) : null;
    return this.authenticate(headers.get('authorization'), gatewayUser);
  }
}

/**
 * The user whose data a read may cover. A non-admin always reads their own data; naming another
 * user is refused rather than silently ignored. An admin reads everyone's unless a user is named.
 */
export function userScope(viewer: Viewer, requestedUserId?: string | null): string | undefined {
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
