import { accessSync, constants, statSync } from 'node:fs';
import { z } from 'zod';
import { longerThan } from '../domain/text-length.js';
import { postgresUrlProblem } from './connection-urls.js';
import { type HttpUrlUse, httpUrlProblem } from './http-url.js';

/** The kinds of values environment variables hold, with their checks (config-env.ts is the table of variables). */

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * One bad variable, in the form loadConfig reports them (the server prints it and exits 1): for
 * the checks made after parsing, and those made where a setting is used (key files, manifests).
 */
export function invalidSetting(variable: string, message: string): ConfigError {
  return new ConfigError(`Invalid configuration:\n  ${variable}: ${message}`);
}

/**
 * Environment values are text, and only decimal digits (with a fraction where the setting allows
 * one), as the README writes numbers, are read as a number. `z.coerce.number` used `Number()`,
 * which reads a blank value as 0 (PORT=" " bound a random port, MUTATION_RATE_PER_S=" " turned the
 * limit off) and takes hex, binary, octal and exponents (PORT=0x10ff bound 4351). A minus sign is
 * let through so that "-1" gets the bound's message ("must be 0 or more") rather than this one. An
 * empty value is not a number either: loadConfig drops it first, so it means "unset" (the default).
 */
const DECIMAL = /^-?\d+(\.\d+)?$/;

/** The number `checks` takes (bounds, whole), read from an environment value written in decimal. */
export function decimal(checks: z.ZodNumber) {
  return z
    .string({ error: 'must be a number written in decimal digits' })
    .trim() // "4000 " and "4000\r" (a trailing space in YAML, a CRLF env file) are still 4000
    .regex(DECIMAL, 'must be a number written in decimal digits')
    .transform((text, ctx) => {
      const value = Number(text);
      if (Math.abs(value) <= Number.MAX_SAFE_INTEGER) return value;
      // zod's int() is a safe-integer check: 99999999999999999999 was "not a whole number", and
      // PORT's own bound said so too, in a second line. Said once, as the setting's bound.
      ctx.addIssue({ code: 'custom', message: boundPassed(checks, Math.sign(value) * Number.MAX_SAFE_INTEGER) });
      return z.NEVER;
    })
    .pipe(checks);
}

/**
 * The message of the bound `checks` puts on a value as far out as `extreme`: of several (a
 * setting's own below Node's longest timer), the tightest (see settingProblems); else JavaScript's.
 */
function boundPassed(checks: z.ZodNumber, extreme: number): string {
  const bounds = (checks.safeParse(extreme).error?.issues ?? []).filter(
    (issue) => issue.code === 'too_big' || issue.code === 'too_small',
  );
  const bound = bounds.reduce<z.core.$ZodIssue | undefined>(
    (kept, issue) => (!kept || tighter(issue, kept) ? issue : kept),
    undefined,
  );
  if (bound) return bound.message;
  return extreme > 0 ? `must be at most ${Number.MAX_SAFE_INTEGER}` : `must be at least ${-Number.MAX_SAFE_INTEGER}`;
}

export const port = z
  .number()
  .int('must be a whole number')
  .min(0, 'must be between 0 and 65535')
  .max(65535, 'must be between 0 and 65535');

export const positiveInt = z.number().int('must be a whole number').positive('must be greater than 0');

export const nonNegativeInt = z.number().int('must be a whole number').min(0, 'must be 0 or more');

/**
 * The lines of a refused environment, one per variable. zod reports every check a value fails, and
 * a setting capped below Node's longest timer holds two bounds: SHUTDOWN_TIMEOUT_MS=2147483648
 * printed both "at most 2147483647" and "at most 600000". Of its bounds, the tightest says it all
 * (a value within it is within the others); else the variable's first problem.
 */
export function settingProblems(issues: readonly z.core.$ZodIssue[]): string[] {
  const byVariable = new Map<string, z.core.$ZodIssue>();
  for (const issue of issues) {
    const variable = issue.path.join('.');
    const kept = byVariable.get(variable);
    if (!kept || tighter(issue, kept)) byVariable.set(variable, issue);
  }
  return [...byVariable].map(([variable, issue]) => `  ${variable}: ${issue.message}`);
}

function tighter(issue: z.core.$ZodIssue, than: z.core.$ZodIssue): boolean {
  if (issue.code === 'too_big' && than.code === 'too_big') return Number(issue.maximum) < Number(than.maximum);
  if (issue.code === 'too_small' && than.code === 'too_small') return Number(issue.minimum) > Number(than.minimum);
  return false;
}

/**
 * Node's longest timer: a setTimeout or setInterval given more fires after 1 ms instead (with a
 * TimeoutOverflowWarning), so a periodic job set to "monthly" would run back to back.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
const TIMER_BOUND = `must be at most ${MAX_TIMER_MS} (about 24.8 days, the longest timer Node keeps)`;
/** A duration in milliseconds that becomes a timer. */
export const positiveMs = positiveInt.max(MAX_TIMER_MS, TIMER_BOUND);
export const nonNegativeMs = nonNegativeInt.max(MAX_TIMER_MS, TIMER_BOUND);

/**
 * An address this server calls over HTTP (or hands out for others to call back): `z.url()` alone
 * takes any scheme, so ftp:, file: and javascript: passed and failed only at the first call. The
 * protocol pattern is zod's own httpProtocol, which also requires the `//` ("http:host" refused).
 */
export const httpUrl = callableUrl({ query: true });
/** A URL that paths are appended to: a query string would swallow them. */
export const baseUrl = callableUrl({ query: false });

/** An http(s) URL held to httpUrlProblem's rule (no port 0, no fragment; a query string as `use` says). */
function callableUrl(use: HttpUrlUse) {
  return z
    .url({ protocol: /^https?$/, error: 'must be an absolute URL (http:// or https://)' })
    .superRefine((text, ctx) => {
      // Not an http(s) URL at all: refused as such already, in one message.
      const url = z.url({ protocol: /^https?$/ }).safeParse(text).success ? URL.parse(text) : null;
      const problem = url && httpUrlProblem(url, text, use);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });
}

/** Whether a URL's user info decodes (`%zz` does not): sent as Basic authentication, it must. */
export function credentialsDecodable(url: URL): boolean {
  try {
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
    return true;
  } catch {
    return false;
  }
}

/** Longest market source base URL: room for any real host and path, far below what would burden a request line. */
export const MAX_BASE_URL_LENGTH = 2_048;

/** How readMarketSourceUrl read a URL: as stored and called, or why it is refused. */
export type MarketSourceUrlReading = { url: string; problem: null } | { url: null; problem: string };

/**
 * A market source's base URL, the one rule for addMarketSource and MARKET_SOURCE_URL: an absolute
 * http(s) URL written `scheme://host`, held to httpUrlProblem without a query
 * string (the Syncer appends `/api/v1/…` to it), whose credentials decode (they are sent as Basic
 * authentication), at most MAX_BASE_URL_LENGTH characters once encoded. `url` is it trimmed and
 * without trailing slashes; `problem` a phrase to follow the field's or setting's name. Neither
 * repeats the URL, which may hold credentials.
 */
export function readMarketSourceUrl(text: string): MarketSourceUrlReading {
  const value = text.trim();
  const refused = (problem: string): MarketSourceUrlReading => ({ url: null, problem });
  if (value === '') return refused('must not be empty');
  if (longerThan(value, MAX_BASE_URL_LENGTH)) return refused(`must be at most ${MAX_BASE_URL_LENGTH} characters`);
  const url = URL.parse(value);
  if (!url) return refused('must be an absolute URL (http:// or https://)');
  const shape = httpUrlProblem(url, value, { query: false });
  if (shape) return refused(shape);
  if (!credentialsDecodable(url)) return refused('has malformed credentials (a % not followed by two hex digits)');
  // As stored and called: a space or a non-ASCII letter grows threefold once percent-encoded.
  const normalized = url.href.replace(/\/+$/, '');
  if (normalized.length > MAX_BASE_URL_LENGTH) {
    return refused(`must be at most ${MAX_BASE_URL_LENGTH} characters once encoded`);
  }
  return { url: normalized, problem: null };
}

/** MARKET_SOURCE_URL: refused as addMarketSource refuses a base URL (readMarketSourceUrl). */
export const marketSourceUrl = z.string().superRefine((value, context) => {
  const { problem } = readMarketSourceUrl(value);
  if (problem !== null) context.addIssue({ code: 'custom', message: problem });
});

function withoutCredentials(url: string): boolean {
  const parsed = URL.parse(url); // null: refused as a URL already
  return !parsed || (parsed.username === '' && parsed.password === '');
}

/**
 * A forward proxy (HTTP_PROXY, HTTPS_PROXY): undici makes the pool with it as a URL, and one it
 * cannot use (`proxy:3128` without a scheme) would fail every outbound call instead of the start.
 */
export const proxyUrl = z.url({
  protocol: /^https?$/,
  error:
    'must be the URL of an HTTP proxy, such as http://proxy.internal:3128 (the lower-case variable, read first, when set)',
});

/** The proxy variables under their upper-case names, with the values undici takes: a lower-case one wins when set. */
export function proxyVariables(env: NodeJS.ProcessEnv): Record<string, string> {
  const taken: Record<string, string> = {};
  for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY']) {
    const value = env[name.toLowerCase()] ?? env[name];
    if (value !== undefined) taken[name] = value;
  }
  return taken;
}

/** A service this server calls with credentials of its own, if any: user info in the URL would not be sent. */
export const serviceUrl = baseUrl.refine(withoutCredentials, 'must not carry credentials (user:password@ is not sent)');
/** An address handed out (to wallets, in callbacks): user info in it would reach every one of them. */
export const publicUrl = baseUrl.refine(
  withoutCredentials,
  'must not carry credentials (user:password@): it is handed out to clients',
);
/** Where pushes are POSTed: a token may go in the query string; user info would not be sent. */
export const pushUrl = httpUrl
  .refine(withoutCredentials, 'must not carry credentials (user:password@ is not sent; a query string is)')
  .optional();

/**
 * A URL with `{developer}` where each developer's name goes. Checked whole here, with a name in
 * place, so that a mistake stops the start in loadConfig's form, and never echoed (it may hold a
 * secret).
 */
export const developerUrlTemplate = z.string().superRefine((template, ctx) => {
  const problem = developerTemplateProblem(template);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

function developerTemplateProblem(template: string): string | null {
  if (!template.includes('{developer}')) return 'must contain {developer}';
  const url = template.replaceAll('{developer}', 'example');
  const parsed = httpUrl.safeParse(url);
  if (!parsed.success) return parsed.error.issues[0]?.message ?? 'must be an absolute URL (http:// or https://)';
  return withoutCredentials(url) ? null : 'must not carry credentials (user:password@ is not sent)';
}

/**
 * A shared secret or token of at least `min` characters. One of spaces only passed the length
 * check: a key anyone could guess, or a bearer token no client can send (HTTP trims it). So did
 * one ending in a CR (a CRLF `.env` file read by a shell): no HTTP client can send it either, and
 * undici refused every request carrying it (APP_SERVICE_TOKEN), reported as an unreachable peer.
 */
export function secret(min: number) {
  return z.string().superRefine((value, ctx) => {
    const problem = !value.trim()
      ? 'must not be blank (it is made of spaces only)'
      : value !== value.trim()
        ? 'must not begin or end with spaces or a line end (a .env file saved with CRLF line ends?)'
        : /\p{Cc}/u.test(value)
          ? 'must not contain control characters'
          : value.length < min
            ? `must be at least ${min} characters`
            : null;
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
}

export const flag = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off'], {
    error: 'must be one of 1, 0, true, false, yes, no, on, off',
  })
  .transform((value) => ['1', 'true', 'yes', 'on'].includes(value));

export type Role = 'user' | 'admin';
export interface ApiToken {
  userId: string;
  role: Role;
  token: string;
}

/** `userId:role:token,…`, e.g. `alice:user:s3cret,ops:admin:t0ken`. */
export const authTokens = z
  .string()
  .optional()
  .transform((raw, ctx): ApiToken[] => {
    if (!raw?.trim()) return [];
    const tokens: ApiToken[] = [];
    for (const [index, entry] of raw.split(',').entries()) {
      const [userId, role, ...rest] = entry.trim().split(':');
      const token = rest.join(':');
      if (!userId || !token || (role !== 'user' && role !== 'admin')) {
        // Never echo the entry itself: it holds a secret.
        ctx.addIssue({
          code: 'custom',
          message: `entry ${index + 1} must look like userId:role:token with role "user" or "admin"`,
        });
        return z.NEVER;
      }
      if (token.length < 8) {
        ctx.addIssue({ code: 'custom', message: `entry ${index + 1}: token must be at least 8 characters` });
        return z.NEVER;
      }
      tokens.push({ userId, role, token });
    }
    return tokens;
  });

/** A comma-separated list; blanks around and between entries are dropped. */
export function splitList(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
}

export const commaList = z.string().optional().transform(splitList);

/**
 * CORS_ORIGINS: origins as browsers send them in `Origin`, which OriginPolicy compares as text.
 * An entry in any other form passed and matched no request: a port past 65535, user info, upper
 * case or the scheme's own port (browsers send `https://a.com` for `https://A.com:443`).
 */
export const originList = z
  .string()
  .optional()
  .transform((raw, ctx) => {
    const origins = splitList(raw);
    for (const [index, origin] of origins.entries()) {
      const problem = originProblem(origin, index + 1);
      if (problem) {
        ctx.addIssue({ code: 'custom', message: problem });
        return z.NEVER;
      }
    }
    return origins;
  });

function originProblem(origin: string, entry: number): string | null {
  // Not echoed: the text before the @ may be a password.
  if (/^https?:\/\/[^/?#]*@/.test(origin))
    return `entry ${entry} has user info (user:password@), which no Origin carries`;
  const url = /^https?:\/\/[^/?#\s]+$/.test(origin) ? URL.parse(origin) : null;
  if (!url) return `${origin} is not an origin like https://example.com[:port] (a port is at most 65535)`;
  if (url.origin !== origin) return `${origin} never matches: browsers send this origin as ${url.origin}`;
  return null;
}

/**
 * BUNDLED_CATALOGUE_FILE: `off`, or a file this process can read, checked at start. A path that
 * named nothing only warned (the start-up sync failing, the variable unnamed) and the server ran
 * with an empty `market.olares`. The default (the project's own file) is not checked here.
 */
export const catalogueFile = z
  .string()
  .trim()
  .min(1, 'must be a path or off')
  .superRefine((file, ctx) => {
    const problem = file === 'off' ? null : unreadableFile(file);
    if (problem)
      ctx.addIssue({ code: 'custom', message: `${file} ${problem}: name a catalogue file, or off for none` });
  });

function unreadableFile(file: string): string | null {
  try {
    if (!statSync(file).isFile()) return 'is not a file';
    accessSync(file, constants.R_OK);
    return null;
  } catch (error) {
    return `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`;
  }
}

export const databaseUrl = z
  .string()
  // "file:./data/market.db " (a blank at the end of a YAML or .env line): the migrations made
  // market.db, and the server then looked for "market.db " and failed its start with ENOENT.
  .trim()
  .default('file:./data/market.db')
  .superRefine((url, ctx) => {
    const problem = url.startsWith('file:')
      ? sqliteUrlProblem(url)
      : /^postgres(ql)?:\/\//.test(url)
        ? postgresUrlProblem(url)
        : 'must be file:<path> (SQLite) or postgresql://… (PostgreSQL)';
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/**
 * The SQLite driver opens the text after `file:` as the path, whole: Prisma's `?connection_limit=…`
 * made a file named `market.db?connection_limit=1` while the banner named `market.db`.
 */
function sqliteUrlProblem(url: string): string | null {
  if (url.includes('?')) {
    // Data written under such a URL is in the file named with the query: say so before it seems lost.
    return `a SQLite file: URL takes no query string: the driver made it part of the file name (data written under this URL is in the file "${url.slice('file:'.length)}"; rename it to what precedes the ?)`;
  }
  return url.length > 'file:'.length ? null : 'must name a file after file:';
}
