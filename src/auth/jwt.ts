import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  createLocalJWKSet,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  errors as joseErrors,
  jwtVerify,
} from 'jose';
import { invalidSetting, type JwtConfig } from '../platform/config.js';
import { userIdProblem } from './user-id.js';

/** What a verified token says about its holder. */
export interface JwtIdentity {
  userId: string;
  isAdmin: boolean;
  /** When the token stops being valid (ms since the epoch); open sockets are closed then. */
  expiresAt: number | undefined;
}

/** A token that was refused, with a reason fit to show the client (never the token itself). */
export class JwtRejected extends Error {
  override name = 'JwtRejected';
}

/**
 * Verifies JWT bearer tokens with jose (no hand-written crypto): HS256 with a shared secret, or
 * RS256/ES256 with a PEM public key or a JWKS file whose keys are picked by `kid`. Issuer,
 * audience and the clock skew are checked when configured; a token without `exp` is accepted only
 * if the issuer chose so (jose's default), and its socket then stays open. The skew applies to
 * `exp`, `nbf` and `iat`: a token issued later than now + skew is refused (jose checks `iat` only
 * with a maximum token age, which would also make `iat` required).
 */
export class JwtVerifier {
  private readonly key: Uint8Array | KeyObject | JWTVerifyGetKey;
  private readonly algorithms: string[];

  constructor(private readonly config: JwtConfig) {
    if (config.secret) {
      this.key = new TextEncoder().encode(config.secret);
      this.algorithms = ['HS256'];
    } else if (config.publicKey) {
      this.key = publicKeyOf(config.publicKey);
      this.algorithms = ['RS256', 'ES256'];
    } else if (config.jwksFile) {
      this.key = keySetOf(config.jwksFile);
      this.algorithms = ['RS256', 'ES256'];
    } else {
      throw new Error('JwtVerifier needs a secret, a public key or a JWKS file');
    }
  }

  async verify(token: string): Promise<JwtIdentity> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.key as Uint8Array, {
        algorithms: this.algorithms,
        clockTolerance: this.config.clockSkewS,
        ...(this.config.issuer ? { issuer: this.config.issuer } : {}),
        ...(this.config.audience ? { audience: this.config.audience } : {}),
      }));
    } catch (error) {
      throw new JwtRejected(reasonOf(error));
    }
    // jose has checked that `iat`, when present, is a number; as it does for `nbf`, with the skew.
    if (typeof payload.iat === 'number' && payload.iat > Math.floor(Date.now() / 1000) + this.config.clockSkewS) {
      throw new JwtRejected('Token claim "iat" is not accepted');
    }
    const userId = payload[this.config.userClaim];
    const problem = typeof userId === 'string' ? userIdProblem(userId) : 'malformed';
    if (typeof userId !== 'string' || problem === 'malformed') {
      throw new JwtRejected(`Token claim "${this.config.userClaim}" must be a user id`);
    }
    if (problem === 'reserved') {
      throw new JwtRejected(`Token claim "${this.config.userClaim}" names a user id reserved for the server`);
    }
    const role = payload[this.config.roleClaim];
    const roles = Array.isArray(role) ? role : [role];
    return {
      userId,
      isAdmin: roles.includes('admin'),
      // When it stops being accepted, the tolerated skew included: a socket or stream opened with
      // a token HTTP still took (expired less than the skew ago) was closed at once.
      expiresAt: typeof payload.exp === 'number' ? (payload.exp + this.config.clockSkewS) * 1000 : undefined,
    };
  }
}

/** jose's reasons, in words a client can act on; anything else is just "invalid". */
function reasonOf(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'Token expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `Token claim "${error.claim}" is not accepted`;
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'Token algorithm is not accepted';
  return 'Invalid or expired token';
}

/**
 * AUTH_JWT_PUBLIC_KEY: PEM text, or the path of a PEM file. A value that is neither stops the
 * server with a ConfigError naming the variable (the key text itself is not repeated).
 */
function publicKeyOf(value: string): KeyObject {
  const inline = value.includes('-----BEGIN');
  let pem = value;
  if (!inline) {
    try {
      pem = readFileSync(value, 'utf8');
    } catch (error) {
      throw invalidSetting(
        'AUTH_JWT_PUBLIC_KEY',
        `${value} cannot be read (${errorCode(error)}): set PEM text (SPKI) or the path of a PEM file`,
      );
    }
  }
  try {
    return createPublicKey(pem);
  } catch (error) {
    const what = inline ? 'the PEM text' : value;
    throw invalidSetting('AUTH_JWT_PUBLIC_KEY', `${what} is not a PEM public key (${(error as Error).message})`);
  }
}

/** AUTH_JWT_JWKS_FILE: the path of a JSON Web Key Set (`{"keys": [...]}`) with at least one key. */
function keySetOf(path: string): JWTVerifyGetKey {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw invalidSetting('AUTH_JWT_JWKS_FILE', `${path} cannot be read (${errorCode(error)})`);
  }
  let jwks: unknown;
  try {
    jwks = JSON.parse(text);
  } catch {
    // Not JSON.parse's message: it quotes the file, and the file may not be the key set it should be.
    throw invalidSetting(
      'AUTH_JWT_JWKS_FILE',
      `${path} is not JSON (a JSON Web Key Set, {"keys": [...]}, is expected)`,
    );
  }
  let keySet: JWTVerifyGetKey;
  try {
    keySet = createLocalJWKSet(jwks as JSONWebKeySet);
  } catch {
    throw invalidSetting('AUTH_JWT_JWKS_FILE', `${path} is not a JSON Web Key Set (an object {"keys": [...]} of JWKs)`);
  }
  if ((jwks as JSONWebKeySet).keys.length === 0) {
    throw invalidSetting('AUTH_JWT_JWKS_FILE', `${path} has no keys: every token would be refused`);
  }
  return keySet;
}

function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}
