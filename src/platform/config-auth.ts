import type { ApiToken, Env } from './config-env.js';
import { invalidSetting } from './config-values.js';

/** How requests are authenticated (AUTH_*): API tokens, JWTs, a gateway's header, or none (local development). */
export interface AuthConfig {
  tokens: ApiToken[];
  userHeader: string | undefined;
  adminUsers: string[];
  jwt: JwtConfig | null;
  /** No tokens, no JWT and no gateway header: a single local admin, loopback only. */
  localDevelopment: boolean;
}

export interface JwtConfig {
  /** Exactly one key source is set. */
  secret: string | undefined;
  publicKey: string | undefined;
  jwksFile: string | undefined;
  issuer: string | undefined;
  audience: string | undefined;
  clockSkewS: number;
  userClaim: string;
  roleClaim: string;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1']);

/** AUTH_*: who a request is, checked for settings that mean nothing alone. */
export function authSettings(e: Env): AuthConfig {
  const jwtKeys = [e.AUTH_JWT_SECRET, e.AUTH_JWT_PUBLIC_KEY, e.AUTH_JWT_JWKS_FILE].filter(Boolean).length;
  if (jwtKeys > 1) {
    throw invalidSetting(
      'AUTH_JWT_SECRET',
      'set only one of AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY and AUTH_JWT_JWKS_FILE',
    );
  }
  // Settings that only mean something beside another: alone, the server started in local
  // development mode (every request the admin) with the operator believing otherwise.
  const jwtOnly = (['AUTH_JWT_ISSUER', 'AUTH_JWT_AUDIENCE'] as const).find((name) => e[name] !== undefined);
  if (jwtOnly && !jwtKeys) {
    throw invalidSetting(
      jwtOnly,
      'set, but there is no key to verify tokens with (AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWT_JWKS_FILE)',
    );
  }
  if (e.AUTH_ADMIN_USERS.length > 0 && !e.AUTH_USER_HEADER) {
    throw invalidSetting(
      'AUTH_ADMIN_USERS',
      'names gateway users, but AUTH_USER_HEADER (the gateway header) is not set',
    );
  }
  const jwt: JwtConfig | null = jwtKeys
    ? {
        secret: e.AUTH_JWT_SECRET,
        publicKey: e.AUTH_JWT_PUBLIC_KEY,
        jwksFile: e.AUTH_JWT_JWKS_FILE,
        issuer: e.AUTH_JWT_ISSUER,
        audience: e.AUTH_JWT_AUDIENCE,
        clockSkewS: e.AUTH_JWT_CLOCK_SKEW_S,
        userClaim: e.AUTH_JWT_USER_CLAIM,
        roleClaim: e.AUTH_JWT_ROLE_CLAIM,
      }
    : null;
  const localDevelopment = e.AUTH_TOKENS.length === 0 && !e.AUTH_USER_HEADER && !jwt;
  if (localDevelopment && !LOOPBACK_HOSTS.has(e.HOST)) {
    throw invalidSetting(
      'HOST',
      `without AUTH_TOKENS, AUTH_JWT_* or AUTH_USER_HEADER the server runs in local development mode and binds only to 127.0.0.1, ::1 or localhost (got ${e.HOST})`,
    );
  }
  return {
    tokens: e.AUTH_TOKENS,
    userHeader: e.AUTH_USER_HEADER,
    adminUsers: e.AUTH_ADMIN_USERS,
    jwt,
    localDevelopment,
  };
}
