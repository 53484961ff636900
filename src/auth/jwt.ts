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
import type { JwtConfig } from '../platform/config.js';

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

const USER_ID = /^[\w.@:-]{1,128}$/;

/**
 * Verifies JWT bearer tokens with jose (no hand-written crypto): HS256 with a shared secret, or
 * RS256/ES256 with a PEM public key or a JWKS file whose keys are picked by `kid`. Issuer,
 * audience and the clock skew are checked when configured; a token without `exp` is accepted only
 * if the issuer chose so (jose's default), and its socket then stays open.
 */
export class JwtVerifier {
  private readonly key: Uint8Array | KeyObject | JWTVerifyGetKey;
  private readonly algorithms: string[];

  constructor(private readonly config: JwtConfig) {
    if (config.secret) {
      this.key = new TextEncoder().encode(config.secret);
      this.algorithms = ['HS256'];
    } else if (config.publicKey) {
      const pem = config.publicKey.includes('-----BEGIN') ? config.publicKey : readFileSync(config.publicKey, 'utf8');
      this.key = createPublicKey(pem);
      this.algorithms = ['RS256', 'ES256'];
    } else if (config.jwksFile) {
      this.key = createLocalJWKSet(JSON.parse(readFileSync(config.jwksFile, 'utf8')) as JSONWebKeySet);
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
    const userId = payload[this.config.userClaim];
    if (typeof userId !== 'string' || !USER_ID.test(userId)) {
      throw new JwtRejected(`Token claim "${this.config.userClaim}" must be a user id`);
    }
    const role = payload[this.config.roleClaim];
    const roles = Array.isArray(role) ? role : [role];
    return {
      userId,
      isAdmin: roles.includes('admin'),
      expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : undefined,
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
