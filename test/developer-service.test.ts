import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { HttpDeveloperService } from '../src/adapters/developer-service/http.js';
import { DeveloperServiceError, type GrantResult } from '../src/adapters/developer-service/port.js';
import { SimulatedDeveloperService } from '../src/adapters/developer-service/simulated.js';
import { createLogger } from '../src/platform/logger.js';
import { parseSimulatedOutcomes } from '../src/platform/simulated-outcomes.js';
import {
  type DeveloperBehaviour,
  type FakeDeveloperService,
  startFakeDeveloperService,
} from './support/fake-developer-service.js';

const JWS = 'eyJhbGciOiJFUzI1NiJ9.eyJwcm9kdWN0SWQiOiJjb20uYWNtZS5wcm8ifQ.c2lnbmF0dXJlLW9mLWFsaWNlLTdmM2E5Yw';
const DEVELOPER = 'Acme.Olares.com';
const PRODUCT = 'com.acme.pro';

let fake: FakeDeveloperService;
const logs: string[] = [];

function createService(options: { urlTemplate?: string; timeoutMs?: number } = {}) {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return new HttpDeveloperService({
    urlTemplate: options.urlTemplate ?? fake.urlTemplate,
    timeoutMs: options.timeoutMs ?? 5_000,
    logger: createLogger('debug', sink),
  });
}

function query(overrides: { developerName?: string; productId?: string; jws?: string } = {}) {
  return { developerName: DEVELOPER, productId: PRODUCT, jws: JWS, ...overrides };
}

/** The DeveloperServiceError a promise rejects with (fails the test when it resolves or throws something else). */
async function failureOf(promise: Promise<unknown>): Promise<DeveloperServiceError> {
  const error = await promise.then(
    () => null,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(DeveloperServiceError);
  return error as DeveloperServiceError;
}

/** A port nothing listens on: bound, read and released again. */
async function closedPort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

beforeAll(async () => {
  fake = await startFakeDeveloperService();
});
afterAll(() => fake?.stop());
beforeEach(() => {
  fake.reset();
  logs.length = 0;
});

describe('HttpDeveloperService.activateAndGrant', () => {
  test('the query is a POST of the jws as JSON to the templated URL of the lower-cased developer', async () => {
    const result = await createService().activateAndGrant(query());

    expect(result).toEqual({ outcome: 'granted', vc: 'vc-acme.olares.com' });
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]).toMatchObject({
      method: 'POST',
      path: '/acme.olares.com/ActivateAndGrant',
      developer: 'acme.olares.com',
      body: { jws: JWS },
    });
    expect(fake.requests[0]?.headers['content-type']).toBe('application/json');
  });

  test('a developer name with characters a URL cannot carry is percent-encoded into one path segment', async () => {
    await createService().activateAndGrant(query({ developerName: 'Bob Dev/Studio' }));
    expect(fake.requests[0]).toMatchObject({
      path: '/bob%20dev%2Fstudio/ActivateAndGrant',
      developer: 'bob dev/studio',
    });
  });

  const answers: { case: string; body: unknown; result: GrantResult }[] = [
    {
      case: 'code 0 with the credential at the top level grants that credential',
      body: { code: 0, verifiableCredential: 'vc-top' },
      result: { outcome: 'granted', vc: 'vc-top' },
    },
    {
      case: 'code 0 with the credential under data grants that credential',
      body: { code: 0, message: 'success', data: { verifiableCredential: 'vc-data' } },
      result: { outcome: 'granted', vc: 'vc-data' },
    },
    {
      case: 'a credential without any code grants that credential',
      body: { data: { verifiableCredential: 'vc-bare' } },
      result: { outcome: 'granted', vc: 'vc-bare' },
    },
    {
      case: 'code 0 without a credential means the developer has no record yet',
      body: { code: 0, data: {} },
      result: { outcome: 'no_record' },
    },
    {
      case: 'code 0 with an empty credential means the developer has no record yet',
      body: { code: 0, verifiableCredential: '', data: { verifiableCredential: '  ' } },
      result: { outcome: 'no_record' },
    },
    ...[1100, 1101, 1604].map((code) => ({
      case: `code ${code} means the buyer must sign again`,
      body: { code, message: 'rejected' },
      result: { outcome: 'need_resign' } as GrantResult,
    })),
    ...[1501, 1502, 7].map((code) => ({
      case: `code ${code} means the developer has no record yet`,
      body: { code, message: 'invalid signature' },
      result: { outcome: 'no_record' } as GrantResult,
    })),
    {
      case: 'a code written as a string is read as that code',
      body: { code: '1604' },
      result: { outcome: 'need_resign' },
    },
    {
      case: 'no code and an error saying "no record" means no record',
      body: { error: 'No record of this purchase' },
      result: { outcome: 'no_record' },
    },
    {
      case: 'no code and a message saying "not found" means no record',
      body: { message: 'order not found' },
      result: { outcome: 'no_record' },
    },
    {
      case: 'no code and an error saying "no data" means no record',
      body: { error: 'no data for product' },
      result: { outcome: 'no_record' },
    },
    {
      case: 'no code and a message saying "invalid" means the buyer must sign again',
      body: { message: 'Invalid JWS' },
      result: { outcome: 'need_resign' },
    },
    {
      case: 'no code and an error saying "expired" means the buyer must sign again',
      body: { error: 'token expired' },
      result: { outcome: 'need_resign' },
    },
    {
      case: 'no code and an error about the signature means the buyer must sign again',
      body: { error: 'Signature verification failed' },
      result: { outcome: 'need_resign' },
    },
    {
      case: 'no code and any other error text means no record',
      body: { error: 'database is busy' },
      result: { outcome: 'no_record' },
    },
    {
      case: 'an empty object means no record',
      body: {},
      result: { outcome: 'no_record' },
    },
  ];

  test.each(answers)('$case', async ({ body, result }) => {
    fake.setBehaviour({ respond: 'json', body });
    expect(await createService().activateAndGrant(query())).toEqual(result);
  });

  const failures: { case: string; behaviour: DeveloperBehaviour; message: string }[] = [
    {
      case: 'an HTTP 500 without a body',
      behaviour: { respond: 'http-error', status: 500 },
      message: 'developer service of Acme.Olares.com answered HTTP 500',
    },
    {
      case: 'an HTTP 500 with an explanation',
      behaviour: { respond: 'http-error', status: 500, body: { error: 'database down' } },
      message: 'developer service of Acme.Olares.com answered HTTP 500: database down',
    },
    {
      case: 'an HTTP 404, even with a body that would otherwise grant',
      behaviour: { respond: 'http-error', status: 404, body: { code: 0, verifiableCredential: 'vc-1' } },
      message: 'developer service of Acme.Olares.com answered HTTP 404',
    },
    {
      case: 'a body that is not JSON',
      behaviour: { respond: 'garbage' },
      message: 'developer service of Acme.Olares.com answered HTTP 200 with a body that is not JSON',
    },
    {
      case: 'JSON that is not an object',
      behaviour: { respond: 'json', body: ['vc-1'] },
      message: 'developer service of Acme.Olares.com answered HTTP 200 with JSON that is not an object',
    },
  ];

  test.each(failures)('$case throws a DeveloperServiceError saying so', async ({ behaviour, message }) => {
    fake.setBehaviour(behaviour);
    const error = await failureOf(createService().activateAndGrant(query()));
    expect(error.message).toBe(message);
  });

  test('a developer service that does not answer in time throws, saying after how long', async () => {
    fake.setBehaviour({ respond: 'hang' });
    const error = await failureOf(createService({ timeoutMs: 200 }).activateAndGrant(query()));
    expect(error.message).toBe('developer service of Acme.Olares.com did not answer within 200 ms');
  });

  test('a developer service that is not listening throws, naming the connection error', async () => {
    const urlTemplate = `http://127.0.0.1:${await closedPort()}/{developer}/ActivateAndGrant`;
    const error = await failureOf(createService({ urlTemplate }).activateAndGrant(query()));
    expect(error.message).toBe('developer service of Acme.Olares.com is unreachable: ECONNREFUSED');
  });

  test('the jws appears in no error message, stack or log line, even when the developer echoes it', async () => {
    const behaviours: DeveloperBehaviour[] = [
      { respond: 'http-error', status: 400, body: { message: `bad jws ${JWS}` } },
      // Long enough that a cut at the length limit would fall inside the jws.
      { respond: 'http-error', status: 401, body: { error: `${'x'.repeat(180)} ${JWS}` } },
      { respond: 'http-error', status: 502 },
      { respond: 'garbage' },
      { respond: 'json', body: JWS },
      { respond: 'json', body: { code: 1100, message: JWS } },
      { respond: 'hang' },
    ];
    const service = createService({ timeoutMs: 200 });
    const errors: DeveloperServiceError[] = [];
    for (const behaviour of behaviours) {
      fake.setBehaviour(behaviour);
      const outcome = await service.activateAndGrant(query()).catch((error: unknown) => error);
      if (outcome instanceof DeveloperServiceError) errors.push(outcome);
    }
    const urlTemplate = `http://127.0.0.1:${await closedPort()}/{developer}/ActivateAndGrant`;
    errors.push(await failureOf(createService({ urlTemplate }).activateAndGrant(query())));

    expect(errors).toHaveLength(7);
    expect(errors[0]?.message).toBe('developer service of Acme.Olares.com answered HTTP 400: bad jws [redacted]');
    for (const error of errors) {
      expect(error.message).not.toContain(JWS);
      expect(error.message).not.toContain(JWS.slice(0, 12));
      expect(error.stack).not.toContain(JWS.slice(0, 12));
    }
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.join('\n')).not.toContain(JWS.slice(0, 12));
  });

  test('each answered query is logged with its status, code and outcome but not the credential', async () => {
    fake.setBehaviour({ respond: 'json', body: { code: 0, verifiableCredential: 'vc-secret-credential' } });
    await createService().activateAndGrant(query());

    const entries = logs.map((line) => JSON.parse(line));
    expect(entries).toEqual([
      expect.objectContaining({
        msg: 'developer service call',
        developer: DEVELOPER,
        productId: PRODUCT,
        status: 200,
        code: 0,
        outcome: 'granted',
      }),
    ]);
    expect(logs.join('\n')).not.toContain('vc-secret-credential');
  });
});

describe('HttpDeveloperService setup and lookup', () => {
  test('lookup derives a did:web from the lower-cased name without asking anyone', async () => {
    const info = await createService().lookup(DEVELOPER);
    expect(info).toEqual({ name: DEVELOPER, did: 'did:web:acme.olares.com', rsaPubKey: null });
    expect(fake.requests).toHaveLength(0);
  });

  test.each([
    ['without the {developer} placeholder', 'http://127.0.0.1:1/ActivateAndGrant', /must contain \{developer\}/],
    ['that is not a URL', '{developer}/ActivateAndGrant', /is not a URL/],
  ])('a URL template %s is refused when the service is created', (_case, urlTemplate, message) => {
    expect(() => createService({ urlTemplate })).toThrow(message);
  });

  test('an empty developer name throws without sending anything', async () => {
    const error = await failureOf(createService().activateAndGrant(query({ developerName: '' })));
    expect(error.message).toMatch(/has no valid URL/);
    expect(fake.requests).toHaveLength(0);
  });
});

describe('the fake developer service', () => {
  test('a sequence answers the i-th call with the i-th step and then keeps repeating the last one', async () => {
    fake.setBehaviour({
      respond: 'sequence',
      steps: [
        { respond: 'json', body: { code: 1501 } },
        { respond: 'json', body: { code: 1501 } },
        { respond: 'json', body: { code: 0, data: { verifiableCredential: 'vc-1' } } },
      ],
    });
    const service = createService();
    const results = [];
    for (let i = 0; i < 4; i += 1) results.push(await service.activateAndGrant(query()));

    expect(results).toEqual([
      { outcome: 'no_record' },
      { outcome: 'no_record' },
      { outcome: 'granted', vc: 'vc-1' },
      { outcome: 'granted', vc: 'vc-1' },
    ]);
  });

  test('a behaviour for one developer, given in any case, overrides the global one for that developer only', async () => {
    fake.setBehaviour({ respond: 'json', body: { code: 1604 } });
    fake.setBehaviour({ respond: 'grant', vc: 'vc-acme' }, 'ACME.olares.com');
    const service = createService();

    expect(await service.activateAndGrant(query())).toEqual({ outcome: 'granted', vc: 'vc-acme' });
    expect(await service.activateAndGrant(query({ developerName: 'other.dev' }))).toEqual({ outcome: 'need_resign' });
    expect(fake.requests.map((request) => request.developer)).toEqual(['acme.olares.com', 'other.dev']);
  });

  test('any other route is a 404 and is still recorded', async () => {
    const response = await fetch(`${fake.url}/acme/GetApplicationSchemaId`, { method: 'POST' });
    expect(response.status).toBe(404);
    expect(fake.requests[0]).toMatchObject({ method: 'POST', path: '/acme/GetApplicationSchemaId', developer: null });
  });
});

describe('SimulatedDeveloperService', () => {
  const vcOf = (productId: string, jws: string) => `vc:sim:${productId}:${sha256(jws).slice(0, 12)}`;

  async function grants(service: SimulatedDeveloperService, count: number, request = query()) {
    const results: GrantResult[] = [];
    for (let i = 0; i < count; i += 1) results.push(await service.activateAndGrant(request));
    return results;
  }

  test('vc-after-3 answers no record twice, then grants a credential naming the product and a hash of the jws', async () => {
    const service = new SimulatedDeveloperService({ outcomes: { [PRODUCT]: 'vc-after-3' } });
    const results = await grants(service, 4);

    expect(results).toEqual([
      { outcome: 'no_record' },
      { outcome: 'no_record' },
      { outcome: 'granted', vc: vcOf(PRODUCT, JWS) },
      { outcome: 'granted', vc: vcOf(PRODUCT, JWS) },
    ]);
    expect(vcOf(PRODUCT, JWS)).toMatch(/^vc:sim:com\.acme\.pro:[0-9a-f]{12}$/);
    expect(JSON.stringify(results)).not.toContain(JWS);
  });

  test('queries are counted per product and jws', async () => {
    const service = new SimulatedDeveloperService({ outcomes: { p1: 'vc-after-2', p2: 'vc-after-2' } });
    const ask = (productId: string, jws: string) => service.activateAndGrant(query({ productId, jws }));

    expect(await ask('p1', 'jws-a')).toEqual({ outcome: 'no_record' });
    expect(await ask('p1', 'jws-b')).toEqual({ outcome: 'no_record' });
    expect(await ask('p2', 'jws-a')).toEqual({ outcome: 'no_record' });
    expect(await ask('p1', 'jws-a')).toEqual({ outcome: 'granted', vc: vcOf('p1', 'jws-a') });
    expect(await ask('p1', 'jws-b')).toEqual({ outcome: 'granted', vc: vcOf('p1', 'jws-b') });
    expect(vcOf('p1', 'jws-a')).not.toBe(vcOf('p1', 'jws-b'));
  });

  test('a product that is not listed gets the default vc-after-2', async () => {
    const service = new SimulatedDeveloperService({ outcomes: { other: 'resign' } });
    expect(await grants(service, 2)).toEqual([
      { outcome: 'no_record' },
      { outcome: 'granted', vc: vcOf(PRODUCT, JWS) },
    ]);
  });

  test('the default outcome can be changed, but only to a credential outcome', async () => {
    const service = new SimulatedDeveloperService({ outcomes: {}, defaultOutcome: 'no-record' });
    expect(await grants(service, 3)).toEqual(Array(3).fill({ outcome: 'no_record' }));
    expect(() => new SimulatedDeveloperService({ outcomes: {}, defaultOutcome: 'missing-developer' })).toThrow(
      /default simulated developer outcome .* not "missing-developer"/,
    );
  });

  test.each([
    ['no-record', { outcome: 'no_record' }],
    ['resign', { outcome: 'need_resign' }],
  ] as const)('%s answers the same on every query', async (outcome, result) => {
    const service = new SimulatedDeveloperService({ outcomes: { [PRODUCT]: outcome } });
    expect(await grants(service, 5)).toEqual(Array(5).fill(result));
  });

  test('error throws a DeveloperServiceError on every query, like a network error, without the jws', async () => {
    const service = new SimulatedDeveloperService({ outcomes: { [PRODUCT]: 'error' } });
    for (let i = 0; i < 3; i += 1) {
      const error = await failureOf(service.activateAndGrant(query()));
      expect(error.message).toBe('simulated developer service of Acme.Olares.com is unreachable');
    }
  });

  test('an outcome under the developer name covers all its products, and one under a product wins over it', async () => {
    const service = new SimulatedDeveloperService({ outcomes: { [DEVELOPER]: 'resign', [PRODUCT]: 'no-record' } });
    expect(await service.activateAndGrant(query())).toEqual({ outcome: 'no_record' });
    expect(await service.activateAndGrant(query({ productId: 'com.acme.lite' }))).toEqual({ outcome: 'need_resign' });
  });

  test('lookup returns a did:key identity without an RSA key for a developer that is not listed', async () => {
    const service = new SimulatedDeveloperService({ outcomes: {} });
    expect(await service.lookup(DEVELOPER)).toEqual({
      name: DEVELOPER,
      did: `did:key:sim-${DEVELOPER}`,
      rsaPubKey: null,
    });
  });

  test('missing-developer makes the lookup of that developer return null, and leaves its queries at the default', async () => {
    const service = new SimulatedDeveloperService({ outcomes: { [DEVELOPER]: 'missing-developer' } });
    expect(await service.lookup(DEVELOPER)).toBeNull();
    expect(await service.lookup('other.dev')).toMatchObject({ did: 'did:key:sim-other.dev' });
    expect(await grants(service, 2)).toEqual([
      { outcome: 'no_record' },
      { outcome: 'granted', vc: vcOf(PRODUCT, JWS) },
    ]);
  });

  test('lookup-error makes the lookup of that developer throw a DeveloperServiceError', async () => {
    const service = new SimulatedDeveloperService({ outcomes: { [DEVELOPER]: 'lookup-error' } });
    const error = await failureOf(service.lookup(DEVELOPER));
    expect(error.message).toBe('simulated lookup of developer Acme.Olares.com failed');
  });

  test('an unknown outcome is refused when the service is created, naming its key', () => {
    expect(() => new SimulatedDeveloperService({ outcomes: { [PRODUCT]: 'explode' } })).toThrow(
      'unknown simulated developer outcome "explode" for "com.acme.pro"',
    );
  });
});

describe('parseSimulatedOutcomes', () => {
  test('reads comma-separated key=outcome entries, ignoring blanks around them and empty entries', () => {
    expect(
      parseSimulatedOutcomes(' com.acme.pro=vc-after-3, com.acme.lite = resign,acme.olares.com=missing-developer,'),
    ).toEqual({
      'com.acme.pro': 'vc-after-3',
      'com.acme.lite': 'resign',
      'acme.olares.com': 'missing-developer',
    });
    expect(parseSimulatedOutcomes('a=no-record,b=error,c=lookup-error,d=vc-after-1')).toEqual({
      a: 'no-record',
      b: 'error',
      c: 'lookup-error',
      d: 'vc-after-1',
    });
  });

  test.each([undefined, '', '  '])('%j means no entries', (raw) => {
    expect(parseSimulatedOutcomes(raw)).toEqual({});
  });

  test.each([
    ['com.acme.pro', 'is not of the form key=outcome'],
    ['com.acme.pro=', 'is not of the form key=outcome'],
    ['=resign', 'is not of the form key=outcome'],
    ['a=resign=error', 'is not of the form key=outcome'],
    ['com.acme.pro=vc-after-0', 'has an unknown outcome'],
    ['com.acme.pro=vc-after-x', 'has an unknown outcome'],
    ['com.acme.pro=explode', 'has an unknown outcome'],
  ])('the entry %j is refused with a message naming it', (entry, problem) => {
    expect(() => parseSimulatedOutcomes(`ok=resign,${entry}`)).toThrow(`entry "${entry}" ${problem}`);
  });

  test('a key listed twice is refused, naming the repeated entry', () => {
    expect(() => parseSimulatedOutcomes('a=resign,b=error,a=no-record')).toThrow(
      'simulated developer outcome entry "a=no-record" repeats the key a',
    );
  });

  test('every parsed outcome is accepted by the service', () => {
    const outcomes = parseSimulatedOutcomes(
      'a=vc-after-7,b=no-record,c=resign,d=error,e=missing-developer,f=lookup-error',
    );
    expect(() => new SimulatedDeveloperService({ outcomes })).not.toThrow();
  });
});
