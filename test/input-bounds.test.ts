import { parse } from 'graphql';
import { afterAll, beforeAll, beforeEach, describe, expect, test, vi } from 'vitest';
import { MAX_USER_ID_LENGTH } from '../src/auth/user-id.js';
import { MAX_APP_NAME_LENGTH, MAX_SOURCE_ID_LENGTH } from '../src/domain/app-key.js';
import { MAX_HISTORY_TYPE_LENGTH } from '../src/services/history-service.js';
import { availableDatabases } from './support/databases.js';
import { seed } from './support/seed.js';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS } from './support/server.js';
import { subscribe } from './support/subscriptions.js';
import { codesOf, engineAtRest, errorLogs, fingerprint, type RawResponse, rawRequest } from './support/untyped.js';

const databases = await availableDatabases();

/** `{ a: { a: … 1 } }`, `levels` objects deep. */
function nested(levels: number): unknown {
  let value: unknown = 1;
  for (let level = 0; level < levels; level++) value = { a: value };
  return value;
}

const TASKS = 'query Tasks($status: [TaskStatus!]) { tasks(filter: { status: $status }) { totalCount } }';
const HISTORY = 'query History($filter: HistoryFilter) { history(filter: $filter) { totalCount } }';
const CATALOG = 'query Catalog($search: String) { catalog(search: $search) { totalCount edges { node { name } } } }';
const INSTALL =
  'mutation Install($input: InstallAppInput!) { installApp(input: $input) { __typename ... on Error { code message } } }';
const START_PAYMENT = `mutation Start($input: StartFrontendPaymentInput!) {
  startFrontendPayment(input: $input) { __typename ... on Error { code message } ... on StartFrontendPaymentSuccess { payment { status } } }
}`;
const BOBS_PAYMENT = { sourceId: 'market.olares', appId: 'comfyui', productId: 'comfyui-license' };

/** The one error of a refused request: code VALIDATION, and the message it must carry. */
function expectValidation(response: RawResponse, message: RegExp, status = 400) {
  expect(response.status, response.text).toBe(status);
  expect(codesOf(response)).toEqual(['VALIDATION']);
  expect(response.body?.errors?.[0]?.message).toMatch(message);
  expect(response.body?.data ?? null).toBeNull();
}

describe.each(databases)('client mistakes are VALIDATION errors with a documented bound, on %s', (kind) => {
  let server: TestServer;
  /** Where this test's log lines start, and the database before it. */
  let logsFrom: number;
  let before: string;

  beforeAll(async () => {
    // A string bound below the default, so that the probes stay small.
    server = await startTestServer(kind, {
      env: { ...AUTH_ENV, MUTATION_RATE_PER_S: '0', MAX_INPUT_STRING_LENGTH: '4096' },
    });
    await engineAtRest(server);
  });
  afterAll(() => server?.stop());
  beforeEach(async () => {
    logsFrom = server.logs.length;
    before = await fingerprint(server.app.db);
  });

  /** Nothing changed and nothing was logged as an error: the refusal was the client's mistake. */
  async function expectNoTrace() {
    expect(await fingerprint(server.app.db)).toBe(before);
    expect(errorLogs(server, logsFrom)).toEqual([]);
  }

  test('malformed `variables` or `extensions` JSON in a GET is a 400 naming the parameter', async () => {
    const query = encodeURIComponent('{ viewer { userId } }');
    for (const [param, text] of [
      ['variables', '{bad'],
      ['extensions', '{"persistedQuery":'],
    ] as const) {
      const response = await rawRequest(
        server,
        { query: '' },
        { method: 'GET', search: `query=${query}&${param}=${encodeURIComponent(text)}`, token: TOKENS.alice },
      );
      expectValidation(response, new RegExp(`"${param}" parameter is not valid JSON`));
    }
    await expectNoTrace();
  });

  test('a filter list of 40,000 values is refused before any resolver runs', async () => {
    await seed(server.app.db).user('alice').task({ appName: 'nextcloud', status: 'FAILED', taskId: 'alices-failed-1' });
    const alicesFailed = await server.app.db.task.count({ where: { userId: 'alice', status: 'FAILED' } });
    before = await fingerprint(server.app.db);
    const list = vi.spyOn(server.app.services.tasks, 'list');
    try {
      const statuses = await rawRequest(
        server,
        { query: TASKS, variables: { status: Array(40_000).fill('PENDING') } },
        { token: TOKENS.alice },
      );
      expectValidation(statuses, /^Variable \$status has 40000 items; at most 100 are accepted\.$/);
      expect(statuses.body?.errors?.[0]?.extensions?.issues).toEqual([
        { path: '$status', message: 'has 40000 items; at most 100 are accepted' },
      ]);
      expect(list).not.toHaveBeenCalled();
    } finally {
      list.mockRestore();
    }
    const types = Array.from({ length: 40_000 }, (_, index) => `TYPE_${index}`);
    const history = await rawRequest(
      server,
      { query: HISTORY, variables: { filter: { type: types } } },
      {
        token: TOKENS.ops,
      },
    );
    expectValidation(history, /^Variable \$filter\.type has 40000 items/);
    // Written into the document: a validation error, refused the same way.
    const literal = `{ history(filter: { type: [${Array(101).fill('"x"').join(',')}] }) { totalCount } }`;
    expectValidation(
      await rawRequest(server, { query: literal }, { token: TOKENS.ops }),
      /history\(filter\)\.type has 101/,
    );
    // At the bound, the list is served.
    const atBound = await rawRequest(
      server,
      { query: TASKS, variables: { status: Array(100).fill('FAILED') } },
      {
        token: TOKENS.alice,
      },
    );
    expect(atBound.body).toEqual({ data: { tasks: { totalCount: alicesFailed } } });
    await expectNoTrace();
  });

  test('a variable the operation does not declare is ignored, as graphql-js does: the operation runs with its own', async () => {
    // What Apollo Client's fetchMore sends: every variable it has, to a document that uses some.
    const tasks = await rawRequest(
      server,
      { query: TASKS, variables: { status: ['FAILED'], cursorOfAnotherQuery: 'abc', x: [1, 2] } },
      { token: TOKENS.alice },
    );
    expect(tasks.status).toBe(200);
    expect(tasks.body?.errors).toBeUndefined();
    expect(tasks.body?.data).toBeTruthy();
    await expectNoTrace();
  });

  test('a 900 KB catalogue search is refused; past 200 characters too; %, _ and \\ are searched for as themselves on both databases', async () => {
    await seed(server.app.db).catalogApp({ name: 'quokka', title: 'Quokka', description: 'The one app named so' });
    await seed(server.app.db).catalogApp({ name: 'qwen', title: 'Qwen', description: 'A language model' });
    await seed(server.app.db).catalogApp({ name: 'wildcard', description: 'Takes 100% off q_en, in a\\b' });
    before = await fingerprint(server.app.db);
    expectValidation(
      await rawRequest(server, { query: CATALOG, variables: { search: 'a%'.repeat(450_000) } }, { token: TOKENS.bob }),
      /^Variable \$search is 900000 characters long; at most 4096 are accepted\.$/,
    );
    const long = await rawRequest(
      server,
      { query: CATALOG, variables: { search: 'x'.repeat(201) } },
      {
        token: TOKENS.bob,
      },
    );
    expect(long.status).toBe(200);
    expect(codesOf(long)).toEqual(['VALIDATION']);
    expect(long.body?.errors?.[0]?.message).toBe('Argument "search" must be at most 200 characters');
    // Characters, as every bound counts them: 200 emoji are 400 UTF-16 units and still 200 characters.
    const emoji = async (count: number) =>
      rawRequest(server, { query: CATALOG, variables: { search: '😀'.repeat(count) } }, { token: TOKENS.bob });
    expect((await emoji(200)).body).toEqual({ data: { catalog: { totalCount: 0, edges: [] } } });
    expect((await emoji(201)).body?.errors?.[0]?.message).toBe('Argument "search" must be at most 200 characters');
    expectValidation(await emoji(4097), /^Variable \$search is 4097 characters long; at most 4096 are accepted\.$/);
    // As typed: `%` and `_` were LIKE's wildcards (`%` listed every app, `q_en` found qwen), and `\`
    // PostgreSQL's escape but a plain character in SQLite.
    const found = async (search: string) =>
      (await rawRequest(server, { query: CATALOG, variables: { search } }, { token: TOKENS.bob })).body;
    for (const search of ['quokk\\', 'quokk%', 'QUOKK_', '_wen', '%_%', '%%']) {
      expect(await found(search), search).toEqual({ data: { catalog: { totalCount: 0, edges: [] } } });
    }
    for (const search of ['%', '_', 'q_en', '100% off', 'A\\B', 'quokk', 'qwen']) {
      const name = { quokk: 'quokka', qwen: 'qwen' }[search] ?? 'wildcard';
      expect(await found(search), search).toEqual({
        data: { catalog: { totalCount: 1, edges: [{ node: { name } }] } },
      });
    }
    await expectNoTrace();
  });

  test('a taskId past 64 characters is refused by task and taskUpdated as by cancelTask; at the bound it is looked up', async () => {
    const taskId = 'a'.repeat(65);
    const read = await rawRequest(server, { query: `{ task(taskId: "${taskId}") { taskId } }` }, { token: TOKENS.bob });
    expect(codesOf(read)).toEqual(['VALIDATION']);
    expect(read.body?.errors?.[0]?.message).toBe('Argument "taskId" must be at most 64 characters');
    const atBound = await rawRequest(
      server,
      { query: `{ task(taskId: "${taskId.slice(1)}") { taskId } }` },
      { token: TOKENS.bob },
    );
    expect(atBound.body).toEqual({ data: { task: null } });
    const live = await subscribe(
      server,
      parse(`subscription { taskUpdated(taskId: "${taskId}") { taskId } }`),
      {},
      {
        token: TOKENS.bob,
      },
    );
    try {
      await expect(live.next(5000)).rejects.toThrow(
        /Argument \\"taskId\\" must be at most 64 characters.*"code":"VALIDATION"/,
      );
    } finally {
      await live.close();
    }
    await expectNoTrace();
  });

  test('an empty id argument is refused by task, app, paymentStatus, taskUpdated and catalogueChanged as by cancelTask', async () => {
    const ask = (query: string) => rawRequest(server, { query }, { token: TOKENS.bob });
    for (const [query, argument] of [
      ['{ task(taskId: "") { taskId } }', 'taskId'],
      ['{ app(sourceId: "", appName: "n8n") { appName } }', 'sourceId'],
      ['{ app(sourceId: "market.olares", appName: "") { appName } }', 'appName'],
      ['{ paymentStatus(sourceId: "", appId: "comfyui") { status } }', 'sourceId'],
      ['{ paymentStatus(sourceId: "market.olares", appId: "") { status } }', 'appId'],
    ] as const) {
      const response = await ask(query);
      expect(codesOf(response), query).toEqual(['VALIDATION']);
      expect(response.body?.errors?.[0]?.message, query).toBe(`Argument "${argument}" must not be empty`);
    }
    const cancel = await ask('mutation { cancelTask(input: { taskId: "" }) { __typename ... on Error { code } } }');
    expect(cancel.body).toEqual({ data: { cancelTask: { __typename: 'ValidationError', code: 'VALIDATION' } } });
    // Optional there, an empty one meant every task (every source) instead of none.
    for (const [document, argument] of [
      ['subscription { taskUpdated(taskId: "") { taskId } }', 'taskId'],
      ['subscription { catalogueChanged(sourceId: "") { sourceId } }', 'sourceId'],
    ] as const) {
      const live = await subscribe(server, parse(document), {}, { token: TOKENS.bob });
      try {
        await expect(live.next(5000)).rejects.toThrow(
          new RegExp(`Argument \\\\"${argument}\\\\" must not be empty.*"code":"VALIDATION"`),
        );
      } finally {
        await live.close();
      }
    }
    await expectNoTrace();
  });

  test('every filter naming a user, source, app or record type refuses an empty or over-long one, in lists and live views alike', async () => {
    const ask = (query: string, variables: Record<string, unknown>) =>
      rawRequest(server, { query, variables }, { token: TOKENS.ops });
    const tooLong = (max: number) => 'x'.repeat(max + 1);
    const LISTS = {
      tasks: 'query ($f: TaskFilter) { tasks(filter: $f) { totalCount } }',
      apps: 'query ($f: AppFilter) { apps(filter: $f) { totalCount } }',
      payments: 'query ($f: PaymentFilter) { payments(filter: $f) { totalCount } }',
      history: 'query ($f: HistoryFilter) { history(filter: $f) { totalCount } }',
      runtimeSnapshot: 'query ($f: SnapshotFilter) { runtimeSnapshot(filter: $f) { sequence } }',
    };
    /** The list, its filter, the argument the refusal names, and the bound (null: refused as empty). */
    type Case = [keyof typeof LISTS, Record<string, unknown>, string, number | null];
    const cases: Case[] = [
      ...(['tasks', 'apps', 'runtimeSnapshot'] as const).flatMap((list): Case[] => [
        [list, { sourceId: '' }, 'filter.sourceId', null],
        [list, { appName: '' }, 'filter.appName', null],
        [list, { sourceId: tooLong(MAX_SOURCE_ID_LENGTH) }, 'filter.sourceId', MAX_SOURCE_ID_LENGTH],
        [list, { appName: tooLong(MAX_APP_NAME_LENGTH) }, 'filter.appName', MAX_APP_NAME_LENGTH],
      ]),
      ['payments', { sourceId: '' }, 'filter.sourceId', null],
      ['payments', { appId: '' }, 'filter.appId', null],
      ['payments', { appId: tooLong(MAX_APP_NAME_LENGTH) }, 'filter.appId', MAX_APP_NAME_LENGTH],
      ['history', { app: '' }, 'filter.app', null],
      ['history', { type: ['ACTION_INSTALL', ''] }, 'filter.type.1', null],
      ['history', { type: [tooLong(MAX_HISTORY_TYPE_LENGTH)] }, 'filter.type.0', MAX_HISTORY_TYPE_LENGTH],
      ['history', { userId: '' }, 'filter.userId', null],
      ['apps', { userId: tooLong(MAX_USER_ID_LENGTH) }, 'filter.userId', MAX_USER_ID_LENGTH],
    ];
    for (const [list, filter, argument, max] of cases) {
      const response = await ask(LISTS[list], { f: filter });
      const message =
        max === null
          ? `Argument "${argument}" must not be empty`
          : `Argument "${argument}" must be at most ${max} characters`;
      expect(codesOf(response), `${list} ${JSON.stringify(filter)}`).toEqual(['VALIDATION']);
      expect(response.body?.errors?.[0]?.message, `${list} ${JSON.stringify(filter)}`).toBe(message);
    }
    // The catalogue's own arguments: an empty source listed every source's apps.
    for (const argument of ['sourceId', 'category']) {
      const response = await ask(`query ($v: String) { catalog(${argument}: $v) { totalCount } }`, { v: '' });
      expect(codesOf(response), argument).toEqual(['VALIDATION']);
      expect(response.body?.errors?.[0]?.message).toBe(`Argument "${argument}" must not be empty`);
    }
    // The live views of the same filters.
    for (const document of [
      'subscription { appUpdated(filter: { sourceId: "" }) { appName } }',
      'subscription { paymentUpdated(filter: { appId: "" }) { appId } }',
      'subscription { historyAdded(filter: { app: "" }) { app } }',
      'subscription { runtimeEvents(filter: { appName: "" }) { sequence } }',
      'subscription { taskUpdated(filter: { sourceId: "" }) { taskId } }',
    ]) {
      const live = await subscribe(server, parse(document), {}, { token: TOKENS.ops });
      try {
        await expect(live.next(5000), document).rejects.toThrow(/must not be empty.*"code":"VALIDATION"/);
      } finally {
        await live.close();
      }
    }
    // A filter within the bounds is applied: a source no app is from matches nothing, an app name at the bound too.
    const bounded = await ask(LISTS.apps, { f: { sourceId: 's'.repeat(MAX_SOURCE_ID_LENGTH) } });
    expect(bounded.body).toEqual({ data: { apps: { totalCount: 0 } } });
    await expectNoTrace();
  });

  test('paymentStatus, app and catalog refuse a source id longer than a source can have and an app id past 128 without echoing them; at the bounds they are looked up', async () => {
    const PAYMENT = 'query ($s: String!, $a: String!) { paymentStatus(sourceId: $s, appId: $a) { status } }';
    const APP = 'query ($s: String!, $a: String!) { app(sourceId: $s, appName: $a) { appName } }';
    const ask = (query: string, s: string, a: string) =>
      rawRequest(server, { query, variables: { s, a } }, { token: TOKENS.bob });
    // The longest strings the input bounds let through: a NOT_FOUND echoing both was 8 KB here (33 KB at the default).
    const longest = 'x'.repeat(4096);
    for (const [query, appArgument] of [
      [PAYMENT, 'appId'],
      [APP, 'appName'],
    ] as const) {
      for (const [s, a, refused, bound] of [
        [longest, longest, 'sourceId', MAX_SOURCE_ID_LENGTH],
        ['s'.repeat(MAX_SOURCE_ID_LENGTH + 1), 'comfyui', 'sourceId', MAX_SOURCE_ID_LENGTH],
        ['market.olares', 'a'.repeat(MAX_APP_NAME_LENGTH + 1), appArgument, MAX_APP_NAME_LENGTH],
      ] as const) {
        const response = await ask(query, s, a);
        expect(codesOf(response), response.text.slice(0, 200)).toEqual(['VALIDATION']);
        expect(response.body?.errors?.[0]?.message).toBe(`Argument "${refused}" must be at most ${bound} characters`);
        expect(response.text.length).toBeLessThan(1000);
      }
    }
    // At the bounds: looked up, nothing there.
    const [s, a] = ['s'.repeat(MAX_SOURCE_ID_LENGTH), 'a'.repeat(MAX_APP_NAME_LENGTH)];
    const payment = await ask(PAYMENT, s, a);
    expect(codesOf(payment)).toEqual(['NOT_FOUND']);
    expect(payment.body?.errors?.[0]?.message).toBe(`App ${a} is not in the catalogue of source ${s}`);
    expect((await ask(APP, s, a)).body).toEqual({ data: { app: null } });
    // The catalogue's filter has the same bound (it was 128: a 100-character id was filtered on, though no source has one).
    const CATALOG_OF = 'query ($s: String) { catalog(sourceId: $s) { totalCount } }';
    const catalog = (id: string) =>
      rawRequest(server, { query: CATALOG_OF, variables: { s: id } }, { token: TOKENS.bob });
    const tooLong = await catalog('s'.repeat(MAX_SOURCE_ID_LENGTH + 1));
    expect(codesOf(tooLong)).toEqual(['VALIDATION']);
    expect(tooLong.body?.errors?.[0]?.message).toBe(
      `Argument "sourceId" must be at most ${MAX_SOURCE_ID_LENGTH} characters`,
    );
    expect((await catalog(s)).body).toEqual({ data: { catalog: { totalCount: 0 } } });
    await expectNoTrace();
  });

  test('a value quoted back in a refusal is cut before an emoji, never inside it', async () => {
    // A lone surrogate (half an emoji) is not text: shown as U+FFFD, or refused by a strict JSON reader.
    const halfAnEmoji = /\p{Cs}|\\u[dD][89abAB]/u;
    const query = 'query Since($after: DateTime) { tasks(filter: { createdAfter: $after }) { totalCount } }';
    const dateTime = await rawRequest(
      server,
      { query, variables: { after: `${'a'.repeat(63)}😀z` } },
      { token: TOKENS.alice },
    );
    expectValidation(dateTime, /must be an ISO-8601 string/);
    const dateTimeMessage = dateTime.body?.errors?.[0]?.message ?? '';
    expect(dateTimeMessage).toContain(`(got "${'a'.repeat(63)}…")`);
    expect(dateTimeMessage).not.toMatch(halfAnEmoji);
    const node = await rawRequest(
      server,
      { query: 'query ($id: ID!) { node(id: $id) { id } }', variables: { id: `${'x'.repeat(199)}😀z` } },
      { token: TOKENS.alice },
    );
    expect(codesOf(node)).toEqual(['VALIDATION']);
    const nodeMessage = node.body?.errors?.[0]?.message ?? '';
    expect(nodeMessage).toBe(`"${'x'.repeat(199)}…" is not a valid id`);
    expect(nodeMessage).not.toMatch(halfAnEmoji);
    expect(node.text).not.toMatch(halfAnEmoji);
    await expectNoTrace();
  });

  test('a NUL byte or an unpaired surrogate in a string input is refused, in a variable or a literal, and nothing is written', async () => {
    const install = (idempotencyKey: string) =>
      rawRequest(
        server,
        {
          query: INSTALL,
          variables: { input: { sourceId: 'market.olares', appName: 'n8n', version: '1.70.1', idempotencyKey } },
        },
        { token: TOKENS.bob },
      );
    expectValidation(await install('key\u0000'), /^Variable \$input\.idempotencyKey contains a NUL character/);
    expectValidation(
      await install('key\ud800'),
      /^Variable \$input\.idempotencyKey contains an unpaired UTF-16 surrogate/,
    );
    const literal = '{ history(filter: { app: "a\\u0000b" }) { totalCount } }';
    expectValidation(
      await rawRequest(server, { query: literal }, { token: TOKENS.bob }),
      /^Argument history\(filter\)\.app contains a NUL character/,
    );
    await expectNoTrace();
  });

  test('a refused JSON key is named by an excerpt, an unpaired surrogate in it by its escape, never echoed whole', async () => {
    const start = (frontendData: unknown) =>
      rawRequest(
        server,
        { query: START_PAYMENT, variables: { input: { ...BOBS_PAYMENT, frontendData } } },
        { token: TOKENS.bob },
      );
    // An unescaped `\uD800`–`\uDFFF` in the JSON answer is a lone surrogate; `\\udfff` is the text the path shows.
    const loneSurrogate = /(^|[^\\])\\u[dD][89a-fA-F]/;
    const surrogate = await start({ '\udfff': 1 });
    expectValidation(surrogate, /^Variable \$input\.frontendData\.\\udfff contains an unpaired UTF-16 surrogate/);
    expect(surrogate.text).not.toMatch(loneSurrogate);
    expect(surrogate.body?.errors?.[0]?.extensions?.issues?.[0]?.path).toBe('$input.frontendData.\\udfff');
    expect(JSON.stringify(surrogate.body)).not.toMatch(/\p{Cs}/u);

    const long = await start({ [`${'k'.repeat(150_000)}\udfff`]: 1 });
    expectValidation(
      long,
      new RegExp(`^Variable \\$input\\.frontendData\\.${'k'.repeat(64)}… is 150001 characters long`),
    );
    expect(long.text.length).toBeLessThan(1000);
    const literal = `mutation { startFrontendPayment(input: { sourceId: "market.olares", appId: "comfyui", productId: "comfyui-license", frontendData: { ${'k'.repeat(150_000)}: "a\\u0000" } }) { __typename } }`;
    const longLiteral = await rawRequest(server, { query: literal }, { token: TOKENS.bob });
    expectValidation(
      longLiteral,
      new RegExp(
        `^Argument startFrontendPayment\\(input\\)\\.frontendData\\.${'k'.repeat(64)}… contains a NUL character`,
      ),
    );
    expect(longLiteral.text.length).toBeLessThan(1000);
    // An unknown field of an input object: graphql-js's refusal quoted its name whole, three times (450 KB).
    const install = (key: string) =>
      rawRequest(
        server,
        {
          query: INSTALL,
          variables: { input: { sourceId: 'market.olares', appName: 'n8n', version: '1.70.1', [key]: 1 } },
        },
        { token: TOKENS.bob },
      );
    const unknown = await install('k'.repeat(150_000));
    expectValidation(unknown, new RegExp(`^Variable \\$input\\.${'k'.repeat(64)}… is 150000 characters long`));
    expect(unknown.text.length).toBeLessThan(1000);
    const unknownSurrogate = await install('\udfff');
    expectValidation(unknownSurrogate, /^Variable \$input\.\\udfff contains an unpaired UTF-16 surrogate/);
    expect(unknownSurrogate.text).not.toMatch(loneSurrogate);
    await expectNoTrace();
  });

  test('DateTime years outside 0001–9999 (in UTC) and impossible dates are refused; the bounds themselves work', async () => {
    const query = 'query Since($after: DateTime) { tasks(filter: { createdAfter: $after }) { totalCount } }';
    for (const [after, message] of [
      ['0000-01-01T00:00:00Z', /out of range: from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59\.999Z/],
      ['0001-01-01T00:00:00+01:00', /out of range/],
      ['9999-12-31T23:30:00-01:00', /out of range/],
      ['2026-02-30T00:00:00Z', /is not a valid date and time/],
      ['2026-01-01T24:00:00Z', /is not a valid date and time/],
      ['+275760-09-13T00:00:00Z', /must be an ISO-8601 string/],
    ] as const) {
      expectValidation(await rawRequest(server, { query, variables: { after } }, { token: TOKENS.alice }), message);
    }
    const literal = await rawRequest(
      server,
      { query: '{ tasks(filter: { createdAfter: "0000-01-01T00:00:00Z" }) { totalCount } }' },
      {
        token: TOKENS.alice,
      },
    );
    expectValidation(literal, /out of range/);
    expect(literal.body?.errors?.[0]).toMatchObject({ locations: [{ line: 1, column: 33 }] });
    const alicesTasks = await server.app.db.task.count({ where: { userId: 'alice' } });
    for (const [after, totalCount] of [
      ['0001-01-01T00:00:00Z', alicesTasks],
      ['9999-12-31T23:59:59.999Z', 0],
    ] as const) {
      const served = await rawRequest(server, { query, variables: { after } }, { token: TOKENS.alice });
      expect(served.body, after).toEqual({ data: { tasks: { totalCount } } });
    }
    await expectNoTrace();
  });

  test('DateTime takes a lower-case t and z (RFC 3339) and digits below the millisecond, each bound of a range filter moved as the exact instant would', async () => {
    const task = await server.app.db.task.findFirst({ where: { userId: 'alice' }, orderBy: { id: 'asc' } });
    const at = task?.createdAt.toISOString() ?? '';
    expect(at).toMatch(/\.\d{3}Z$/);
    const count = (createdAt: Record<string, Date>) =>
      server.app.db.task.count({ where: { userId: 'alice', createdAt } });
    const exactly = await count({ equals: task?.createdAt ?? new Date(0) });
    const query =
      'query Between($after: DateTime, $before: DateTime) { tasks(filter: { createdAfter: $after, createdBefore: $before }) { totalCount } }';
    const between = async (after: string, before: string) =>
      (await rawRequest(server, { query, variables: { after, before } }, { token: TOKENS.alice })).body;
    for (const spelling of [at, at.replace('T', 't').replace('Z', 'z'), at.replace('Z', '000000z')]) {
      expect(await between(spelling, spelling), spelling).toEqual({ data: { tasks: { totalCount: exactly } } });
    }
    const literal = `{ tasks(filter: { createdAfter: "${at.toLowerCase()}", createdBefore: "${at}" }) { totalCount } }`;
    expect((await rawRequest(server, { query: literal }, { token: TOKENS.alice })).body).toEqual({
      data: { tasks: { totalCount: exactly } },
    });
    // 0.9 µs after the task (as Python's isoformat or Go's RFC3339Nano write times): a task created
    // at the millisecond before it is not at or after it, and is at or before it.
    const later = at.replace('Z', '0009Z');
    const last = '9999-12-31T23:59:59.999Z';
    const afterTask = await count({ gt: task?.createdAt ?? new Date(0) });
    const untilTask = await count({ lte: task?.createdAt ?? new Date(0) });
    expect(await between(later, last)).toEqual({ data: { tasks: { totalCount: afterTask } } });
    expect(await between('0001-01-01T00:00:00Z', at.replace('Z', '999999Z'))).toEqual({
      data: { tasks: { totalCount: untilTask } },
    });
    expect(await between(later, later)).toEqual({ data: { tasks: { totalCount: 0 } } });
    const literalLater = `{ tasks(filter: { createdAfter: "${later}" }) { totalCount } }`;
    expect((await rawRequest(server, { query: literalLater }, { token: TOKENS.alice })).body).toEqual({
      data: { tasks: { totalCount: afterTask } },
    });
    // The instant after the last stored millisecond is past the range, not moved beyond it.
    expectValidation(
      await rawRequest(server, { query, variables: { after: '9999-12-31T23:59:59.9991Z' } }, { token: TOKENS.alice }),
      /out of range/,
    );
    await expectNoTrace();
  });

  test('JSON nested 500 deep in a mutation input is refused and the payment is untouched; 8 levels are accepted', async () => {
    const deep = await rawRequest(
      server,
      { query: START_PAYMENT, variables: { input: { ...BOBS_PAYMENT, frontendData: nested(500) } } },
      { token: TOKENS.bob },
    );
    expectValidation(deep, /^Variable \$input\.frontendData(\.a){8} is nested more than 8 levels deep/);
    const literal = `mutation { startFrontendPayment(input: { sourceId: "market.olares", appId: "comfyui", productId: "comfyui-license", frontendData: ${JSON.stringify(nested(9)).replaceAll('"a"', 'a')} }) { __typename } }`;
    expectValidation(
      await rawRequest(server, { query: literal }, { token: TOKENS.bob }),
      /^Argument startFrontendPayment\(input\)\.frontendData(\.a){8} is nested more than 8 levels deep/,
    );
    await expectNoTrace();
    const atBound = await rawRequest(
      server,
      { query: START_PAYMENT, variables: { input: { ...BOBS_PAYMENT, frontendData: nested(8) } } },
      { token: TOKENS.bob },
    );
    expect(atBound.body).toEqual({
      data: {
        startFrontendPayment: {
          __typename: 'StartFrontendPaymentSuccess',
          payment: { status: 'PAYMENT_FRONTEND_STARTED' },
        },
      },
    });
  });

  test('variables of the wrong type or an unknown enum value are VALIDATION errors, not logged as unexpected', async () => {
    const wrongType = await rawRequest(
      server,
      { query: 'query($n: Int) { tasks(first: $n) { totalCount } }', variables: { n: 'abc' } },
      {
        token: TOKENS.alice,
      },
    );
    expectValidation(wrongType, /^Variable "\$n" got invalid value "abc"; Int cannot represent/);
    const unknownEnum = await rawRequest(
      server,
      { query: TASKS, variables: { status: ['NOPE'] } },
      { token: TOKENS.alice },
    );
    expectValidation(unknownEnum, /Value "NOPE" does not exist in "TaskStatus" enum/);
    // A subscription's variables are coerced by the executor's subscribe(), which calls the mistake
    // BAD_USER_INPUT: the same code as a query's for the client to branch on.
    const subscription = await subscribe(
      server,
      parse('subscription($status: [TaskStatus!]) { taskUpdated(filter: { status: $status }) { taskId } }'),
      { status: ['NOPE'] },
      { token: TOKENS.alice },
    );
    try {
      await expect(subscription.next(5000)).rejects.toThrow(
        /NOPE.{1,4} does not exist in .{1,4}TaskStatus.*"code":"VALIDATION"/,
      );
    } finally {
      await subscription.close();
    }
    await expectNoTrace();
  });

  test("cancelTask and retryTask on another user's task answer NOT_FOUND, exactly as for an unknown id", async () => {
    const mutation = (name: string, taskId: string) =>
      rawRequest(
        server,
        { query: `mutation { ${name}(input: { taskId: "${taskId}" }) { __typename ... on Error { code message } } }` },
        {
          token: TOKENS.bob,
        },
      );
    await seed(server.app.db).user('alice').task({ appName: 'nextcloud', status: 'FAILED', taskId: 'alices-failed-2' });
    before = await fingerprint(server.app.db);
    for (const name of ['cancelTask', 'retryTask']) {
      const alices = (await mutation(name, 'alices-failed-2')).body?.data?.[name];
      const unknown = (await mutation(name, 'demo-9999')).body?.data?.[name];
      expect(alices).toEqual({
        __typename: 'NotFoundError',
        code: 'NOT_FOUND',
        message: 'Task alices-failed-2 does not exist',
      });
      expect(unknown).toEqual({
        __typename: 'NotFoundError',
        code: 'NOT_FOUND',
        message: 'Task demo-9999 does not exist',
      });
    }
    await expectNoTrace();
  });

  test('the same bounds hold over graphql-ws and server-sent events', async () => {
    const document = parse(
      'subscription Tasks($status: [TaskStatus!]) { taskUpdated(filter: { status: $status }) { taskId } }',
    );
    const ws = await subscribe(server, document, { status: Array(40_000).fill('RUNNING') }, { token: TOKENS.alice });
    try {
      await expect(ws.next(5000)).rejects.toThrow(/Variable \$status has 40000 items.*"code":"VALIDATION"/);
    } finally {
      await ws.close();
    }
    const wsQuery = await subscribe(server, parse(HISTORY), { filter: { app: 'a\u0000' } }, { token: TOKENS.alice });
    try {
      await expect(wsQuery.next(5000)).rejects.toThrow(/Variable \$filter\.app contains a NUL character/);
    } finally {
      await wsQuery.close();
    }

    const sse = await fetch(`${server.url}/graphql/stream`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${TOKENS.alice}`,
        'content-type': 'application/json',
        accept: 'text/event-stream',
      },
      body: JSON.stringify({ query: CATALOG, variables: { search: 'x'.repeat(5000) } }),
    });
    // Refused before it ran: graphql-sse's protocol puts the errors in the stream's one `next`.
    expect(sse.status).toBe(200);
    const text = await sse.text();
    expect([...text.matchAll(/event: next\ndata: (.*)\n\n/g)].map((m) => JSON.parse(m[1] as string))).toEqual([
      {
        errors: [
          expect.objectContaining({
            message: 'Variable $search is 5000 characters long; at most 4096 are accepted.',
            extensions: expect.objectContaining({ code: 'VALIDATION' }),
          }),
        ],
      },
    ]);
    expect(text.endsWith('event: complete\ndata:\n\n')).toBe(true);
    await expectNoTrace();
  });
});
