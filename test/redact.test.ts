import { describe, expect, test } from 'vitest';
import { upstreamExcerpt } from '../src/platform/outbound-http.js';
import { isSecretEnv, isSecretName, REDACTED, SecretRedactor, secretEnvValues } from '../src/platform/redact.js';

const VC =
  'eyJhbGciOiJFUzI1NiIsInR5cCI6InZjK2p3dCJ9.eyJzdWIiOiJkaWQ6YWxpY2UiLCJwcm9kdWN0IjoiY29tZnl1aS1saWNlbnNlIn0.c2lnbmF0dXJlLW9mLXRoZS1kZXZlbG9wZXI';
/** Not JWT-shaped: only redaction by value can find it. */
const OPAQUE = 'vc:sim:comfyui-license:7f3a9c2e11b84d0c9e6f5a4b3c2d1e0f';
const PASSWORD = 'correct-horse-battery-staple';

describe('isSecretName', () => {
  test.each([
    'VERIFIABLE_CREDENTIAL',
    'APP_SERVICE_TOKEN',
    'DB_PASSWORD',
    'MYSQL_PASSWD',
    'api_key',
    'SECRET_KEY_BASE',
    'x-authorization',
    'Authorization',
    'vc',
    'jws',
    'signature',
    'refreshToken',
    'client_secret',
  ])('%s names a secret', (name) => {
    expect(isSecretName(name)).toBe(true);
  });

  test.each([
    'envName',
    'value',
    'missingValues',
    'DB_HOST',
    'x_market_user',
    'repoUrl',
    'requestHash',
    'key',
    'author',
    'status',
    'opID',
  ])('%s does not', (name) => {
    expect(isSecretName(name)).toBe(false);
  });

  test('an env is secret when marked so or named like a secret', () => {
    expect(isSecretEnv({ name: 'LICENSE', value: 'x', secret: true })).toBe(true);
    expect(isSecretEnv({ name: 'ADMIN_PASSWORD', value: 'x' })).toBe(true);
    expect(isSecretEnv({ name: 'TZ', value: 'UTC' })).toBe(false);
    expect(
      secretEnvValues([
        { name: 'TZ', value: 'UTC' },
        { name: 'VERIFIABLE_CREDENTIAL', value: VC },
        { name: 'LICENSE', value: 'abc-123', secret: true },
        { name: 'DB_PASSWORD', valueFrom: 'x' } as never,
      ]),
    ).toEqual([VC, 'abc-123']);
  });
});

describe('SecretRedactor.text by value', () => {
  const redactor = new SecretRedactor();

  test("a request's own secrets are redacted wherever the upstream quotes them, as is or JSON-escaped", () => {
    const body = JSON.stringify({ envs: [{ envName: 'LICENSE', value: OPAQUE }] });
    const message = `invalid request ${body}; again: ${JSON.stringify(body)}`;
    const redacted = redactor.text(message, [OPAQUE]);
    expect(redacted).not.toContain(OPAQUE);
    expect(redacted).not.toContain('7f3a9c2e11b84d0c');
    expect(redacted).toContain(`"envName":"LICENSE","value":"${REDACTED}"`);
  });

  test('a secret quoted back by a Go service, which escapes < > & in JSON, is redacted whole', () => {
    // encoding/json writes `&` as \u0026 and `<` as \u003c; the app service is written in Go.
    const secret = 'correct"horse&battery<staple';
    const goBody = JSON.stringify({ envs: [{ envName: 'LICENSE', value: secret }] }).replace(
      /[<>&]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    );
    for (const known of [
      new SecretRedactor().text(`invalid request ${goBody}`, [secret]),
      (() => {
        const later = new SecretRedactor();
        later.remember(secret);
        return later.text(`state event quoting ${goBody}`);
      })(),
    ]) {
      expect(known).not.toMatch(/horse|battery|staple/);
      expect(known).toContain(`"value":"${REDACTED}"`);
    }
  });

  test('a remembered secret is redacted from later text that does not name it', () => {
    const later = new SecretRedactor();
    later.remember(OPAQUE);
    expect(later.text(`could not verify ${OPAQUE} (expired)`)).toBe(`could not verify ${REDACTED} (expired)`);
  });

  test.each([
    ['a prefix of 16 characters', OPAQUE.slice(0, 16)],
    ['a long prefix', OPAQUE.slice(0, 40)],
    ['a suffix of 16 characters', OPAQUE.slice(-16)],
    ['an inner piece of 31 characters', OPAQUE.slice(5, 36)],
  ])('%s of a known secret (an upstream cut the quote) is redacted', (_case, piece) => {
    const redacted = redactor.text(`bad credential "${piece}…" (truncated)`, [OPAQUE]);
    expect(redacted).toBe(`bad credential "${REDACTED}…" (truncated)`);
  });

  test('values shorter than 6 characters are not matched by value (they would garble the message)', () => {
    expect(redactor.text('HTTP 422 at 1234', ['1234'])).toBe('HTTP 422 at 1234');
  });

  test('the oldest remembered secrets are forgotten beyond the bound', () => {
    const small = new SecretRedactor({ maxRemembered: 2 });
    small.remember('first-secret-value', 'second-secret-value', 'third-secret-value');
    expect(small.remembered).toBe(2);
    expect(small.text('first-secret-value third-secret-value')).toBe(`first-secret-value ${REDACTED}`);
  });

  test('a kept secret (the configuration: a proxy password) is never forgotten, however many come after it', () => {
    const small = new SecretRedactor({ maxRemembered: 2 });
    small.keep('proxy-password-value');
    small.remember('first-secret-value', 'second-secret-value', 'third-secret-value');
    expect(small.text('proxy-password-value first-secret-value')).toBe(`${REDACTED} first-secret-value`);
  });
});

describe('SecretRedactor.text by shape', () => {
  const redactor = new SecretRedactor();

  test.each([
    ['a JWS', `signature ${VC} rejected`, `signature ${REDACTED} rejected`],
    ['a JWS cut short', `bad jws eyJhbGciOiJFUzI1NiIsInR5cCI6`, `bad jws ${REDACTED}`],
    ['a Bearer token', 'got Authorization: Bearer abc.def-123', `got Authorization: Bearer ${REDACTED}`],
    // Named like a source file, but what follows is no stack frame's line:column.
    ['a name like a file, then no position', 'credential.ts: abc123', `credential.ts: ${REDACTED}`],
    [
      'a JSON field named like a secret',
      '{"user":"alice","token":"s3cr3t-t0k3n"}',
      `{"user":"alice","token":"${REDACTED}"}`,
    ],
    [
      'a query parameter',
      'GET /x?user=alice&access_token=abc123&x=1',
      `GET /x?user=alice&access_token=${REDACTED}&x=1`,
    ],
    ['a header', 'X-Authorization: service-credential-0001 was refused', `X-Authorization: ${REDACTED} was refused`],
    [
      'an env entry in JSON',
      '[{"envName":"DB_PASSWORD","value":"hunter2hunter2"},{"envName":"TZ","value":"UTC"}]',
      `[{"envName":"DB_PASSWORD","value":"${REDACTED}"},{"envName":"TZ","value":"UTC"}]`,
    ],
    [
      'an env entry value first',
      '{"value":"hunter2hunter2","name":"DB_PASSWORD"}',
      `{"value":"${REDACTED}","name":"DB_PASSWORD"}`,
    ],
    [
      "an env entry in Go's %+v",
      '[{EnvName:VERIFIABLE_CREDENTIAL Value:opaque-vc-1 ValueFrom:<nil>}]',
      `[{EnvName:VERIFIABLE_CREDENTIAL Value:${REDACTED} ValueFrom:<nil>}]`,
    ],
    [
      'an env entry quoted inside a JSON string',
      String.raw`"invalid request {\"envName\":\"VERIFIABLE_CREDENTIAL\",\"value\":\"opaque-vc-1\"}"`,
      String.raw`"invalid request {\"envName\":\"VERIFIABLE_CREDENTIAL\",\"value\":\"${REDACTED}\"}"`,
    ],
    [
      'an env entry cut off in its value',
      'invalid request {"envs":[{"envName":"VERIFIABLE_CREDENTIAL","value":"opaque-vc-1',
      `invalid request {"envs":[{"envName":"VERIFIABLE_CREDENTIAL","value":"${REDACTED}`,
    ],
    [
      'a secret-named value holding escaped quotes',
      String.raw`{"envName":"DB_PASSWORD","value":"correct\"horse\u0026battery"} rejected`,
      `{"envName":"DB_PASSWORD","value":"${REDACTED}"} rejected`,
    ],
    [
      'a secret-named value holding escaped quotes, quoted inside a JSON string',
      String.raw`"bad {\"envName\":\"DB_PASSWORD\",\"value\":\"correct\\\"horse\\u0026battery\"}"`,
      String.raw`"bad {\"envName\":\"DB_PASSWORD\",\"value\":\"${REDACTED}\"}"`,
    ],
    ['KEY=value', 'env API_KEY=abcdef123 missing', `env API_KEY=${REDACTED} missing`],
    ['a credential object', 'vc: {"id":"urn:1","proof":{"x":1}} end', `vc: ${REDACTED} end`],
  ])('%s', (_case, input, expected) => {
    expect(redactor.text(input)).toBe(expected);
  });

  test.each([
    'app service rejected install of jellyfin: missing env values (HTTP 422)',
    'https://charts.example.com/api/v2/status?user=alice',
    '{"envName":"DB_PASSWORD"} is missing',
    'timestamps: 2026-05-15T10:00:00Z',
    `app service rejected install of x: ${REDACTED} (HTTP 422)`,
    // A stack frame in a file named like a secret: the position was redacted ("credential-polling.ts:[redacted])").
    '    at async CredentialPolling.grant (/srv/market/src/services/credential-polling.ts:131:7)',
    '    at signatureOf (file:///srv/market/dist/services/signature-check.js:12:3)\n    at next',
    '    at keyOf (/srv/market/src/platform/api-key.mjs:8)',
  ])('leaves text without secrets alone: %s', (text) => {
    expect(redactor.text(text)).toBe(text);
  });

  test.each([
    ['a long run of letters', 'H'.repeat(200_000)],
    ['a name then a long run of spaces', `a${' '.repeat(200_000)}`],
    ['a run of letters ending in a secret', `${'x'.repeat(200_000)} password=hunter22`],
  ])(
    'text an upstream controls is redacted in one pass, not one per position: %s',
    (_shape, text) => {
      // Finishing is the point: the name patterns once backtracked over the whole run from every
      // position in it (32 k letters took 9.6 s, 200 k would take minutes).
      const redacted = redactor.text(text);
      expect(redacted).toBe(text.replace('hunter22', REDACTED));
    },
    10_000,
  );

  test('redacting twice changes nothing more', () => {
    const once = redactor.text(
      'invalid request {"envs":[{"envName":"VERIFIABLE_CREDENTIAL","value":"opaque-vc-1"}],"token":"t0k3n-value"} Authorization: Bearer abc',
      ['opaque-vc-1'],
    );
    expect(redactor.text(once)).toBe(once);
  });
});

describe('SecretRedactor.json', () => {
  const redactor = new SecretRedactor();

  test('fields named like secrets, secret env entries and secret strings are redacted; the rest is kept', () => {
    const data = {
      type: 'appenv',
      missingValues: [{ envName: 'DB_PASSWORD' }],
      request: {
        envs: [
          { envName: 'VERIFIABLE_CREDENTIAL', value: OPAQUE },
          { envName: 'TZ', value: 'UTC' },
          { name: 'ADMIN_PASSWORD', value: PASSWORD },
        ],
        token: 'abc',
        signature: { r: 1, s: 2 },
        hasToken: false,
      },
      note: `quoted ${VC}`,
    };
    expect(redactor.json(data, [OPAQUE])).toEqual({
      type: 'appenv',
      missingValues: [{ envName: 'DB_PASSWORD' }],
      request: {
        envs: [
          { envName: 'VERIFIABLE_CREDENTIAL', value: REDACTED },
          { envName: 'TZ', value: 'UTC' },
          { name: 'ADMIN_PASSWORD', value: REDACTED },
        ],
        token: REDACTED,
        signature: REDACTED,
        hasToken: false,
      },
      note: `quoted ${REDACTED}`,
    });
  });

  test('JSON nested deeper than the walk goes is replaced, not walked', () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 10_000; i++) deep = { a: deep };
    expect(JSON.stringify(redactor.json(deep))).toContain(REDACTED);
  });
});

describe('upstreamExcerpt', () => {
  test('redacts only as much of a huge answer as the excerpt needs, and still every secret in it', () => {
    expect(upstreamExcerpt('H'.repeat(20_000_000), 200)).toBe('H'.repeat(200));
    // The first prefix read is all one long secret, shorter than the excerpt once redacted: more is read.
    const text = `token=${'x'.repeat(5000)} then password=hunter22 and more`;
    expect(upstreamExcerpt(text, 40)).toBe(`token=${REDACTED} then password=${REDACTED}`.slice(0, 40));
  });
});
