import { randomBytes } from 'node:crypto';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { graphql } from './gql/index.js';
import { availableDatabases } from './support/databases.js';
import { type FakeAppService, sendEvent, startFakeAppService } from './support/fake-app-service.js';
import { type FakeChartRepo, startFakeChartRepo } from './support/fake-chart-repo.js';
import { type FakeDeveloperService, startFakeDeveloperService } from './support/fake-developer-service.js';
import {
  CancelTaskMutation,
  InstallAppMutation,
  PurchaseAppMutation,
  RetryTaskMutation,
  SubmitPaymentTransactionMutation,
  SubmitSignatureMutation,
} from './support/operations.js';
import { REMOTE_SOURCE, seed, startSeededServer } from './support/seed.js';
import { dataOf, execute, type GraphQLResponse, type TestServer, waitFor } from './support/server.js';
import { type Subscription, subscribe } from './support/subscriptions.js';

/**
 * A full run against upstreams that quote our requests and secrets back at us (the app service
 * over HTTP, the developer's credential service, the chart repo): a paid install whose credential
 * reaches the app service, rejections that quote the whole request, state events and listed apps
 * whose texts quote the credential, errors that quote tokens. Every log line (at trace level),
 * every GraphQL response, every subscription event over graphql-ws and every stored text a user
 * can read is captured, and none may contain any piece of a secret.
 */

const databases = await availableDatabases();
const SOURCE = REMOTE_SOURCE;

const TaskAuditQuery = graphql(`
  query SecretsTask($taskId: String!) {
    task(taskId: $taskId) { taskId status error result opId app { appName state reason } }
  }
`);

/** What users and operators read, in pieces small enough for the query cost limit. */
const AuditQueries = [
  graphql(`
    query SecretsTasks {
      tasks(first: 100) { edges { node { taskId userId appName status error result } } }
    }
  `),
  graphql(`
    query SecretsApps {
      apps(first: 100) { edges { node { userId appName state reason } } }
    }
  `),
  graphql(`
    query SecretsHistory {
      history(first: 100) { edges { node { type message extended userId } } }
    }
  `),
  graphql(`
    query SecretsPayments {
      payments(first: 20) { edges { node { userId appId status notifications { channel topic status payload } } } }
    }
  `),
  graphql(`
    query SecretsRuntime {
      runtimeSnapshot {
        tasks { taskId error result }
        apps { appName reason }
        components { name message metrics }
        chartRepo { reachable lastError }
      }
    }
  `),
] as TypedDocumentNode<unknown, Record<string, never>>[];

const ChartRepoErrorQuery = graphql(`
  query SecretsChartRepo {
    chartRepo { lastError }
  }
`);

const TaskEventsSubscription = graphql(`
  subscription SecretsTaskEvents {
    taskUpdated { taskId appName status error result }
  }
`);
const AppEventsSubscription = graphql(`
  subscription SecretsAppEvents {
    appUpdated { userId appName state reason }
  }
`);
const HistoryEventsSubscription = graphql(`
  subscription SecretsHistoryEvents {
    historyAdded { type message extended app userId }
  }
`);
const PaymentEventsSubscription = graphql(`
  subscription SecretsPaymentEvents {
    paymentUpdated { appId status notifications { topic status payload } }
  }
`);
const RuntimeEventsSubscription = graphql(`
  subscription SecretsRuntimeEvents {
    runtimeEvents {
      sequence kind
      app { appName reason }
      task { taskId appName status error result }
      component { name message metrics }
      chartRepo { reachable lastError }
    }
  }
`);
const RuntimeSnapshotSubscription = graphql(`
  subscription SecretsRuntimeSnapshot {
    runtimeSnapshot {
      tasks { taskId appName status error result }
      apps { appName reason }
      components { name message }
      chartRepo { lastError }
    }
  }
`);

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
const base64url = (bytes: number) => randomBytes(bytes).toString('base64url');

/** Fresh for every run, so that any occurrence in the output is a leak and not a coincidence. */
function makeSecrets() {
  return {
    aliceToken: `alice-${hex(16)}`,
    bobToken: `bob-${hex(16)}`,
    opsToken: `ops-${hex(16)}`,
    appServiceToken: `svc-${hex(20)}`,
    eventSecret: `evt-${hex(20)}`,
    /** The buyer's signature: JWS-shaped. */
    jws: `eyJhbGciOiJFUzI1NiJ9.${base64url(48)}.${base64url(48)}`,
    /** The credential the developer grants: opaque, so only redaction by value can find it. */
    vc: `vc${hex(40)}`,
    /** A secret env the user passes with the install. */
    adminPassword: `pw-${hex(12)}`,
  };
}

/** Pieces this long of a secret count as a leak: enough to matter, and far too long to occur by chance. */
const PIECE = 16;

/**
 * The first piece of a secret that `haystack` holds, named and shown in its context; null when
 * there is none. Every secret is longer than PIECE.
 */
function findLeak(haystack: string, secrets: Record<string, string>): string | null {
  const pieces = new Map<string, string>();
  for (const [name, value] of Object.entries(secrets)) {
    for (let at = 0; at + PIECE <= value.length; at++) pieces.set(value.slice(at, at + PIECE), name);
  }
  for (let at = 0; at + PIECE <= haystack.length; at++) {
    const name = pieces.get(haystack.slice(at, at + PIECE));
    if (name) return `${name}: …${haystack.slice(Math.max(0, at - 80), at + PIECE + 80)}…`;
  }
  return null;
}

describe.each(databases)('no secret reaches a log, a response, history or an event on %s', (kind) => {
  const secret = makeSecrets();
  let appService: FakeAppService;
  let developer: FakeDeveloperService;
  let chartRepo: FakeChartRepo;
  let server: TestServer;
  /** Every GraphQL response body of the run. */
  const responses: unknown[] = [];

  async function run<T, V>(document: TypedDocumentNode<T, V>, variables: V, token: string): Promise<T> {
    const response: GraphQLResponse<T> = await execute(server, document, variables as never, { token });
    responses.push({ data: response.data, errors: response.errors });
    return dataOf(response);
  }

  beforeAll(async () => {
    appService = await startFakeAppService();
    developer = await startFakeDeveloperService();
    chartRepo = await startFakeChartRepo();
    ({ server } = await startSeededServer(kind, {
      preseed: (seed) => seed.remoteSource(),
      logLevel: 'trace',
      env: {
        AUTH_TOKENS: `alice:user:${secret.aliceToken},bob:user:${secret.bobToken},ops:admin:${secret.opsToken}`,
        APP_SERVICE_URL: appService.url,
        APP_SERVICE_TOKEN: secret.appServiceToken,
        APP_SERVICE_EVENT_SECRET: secret.eventSecret,
        APP_SERVICE_TIMEOUT_MS: '5000',
        RECONCILE_INTERVAL_MS: '200',
        DEVELOPER_SERVICE_URL_TEMPLATE: developer.urlTemplate,
        PAYMENT_POLL_INTERVAL_MS: '30',
        PAYMENT_POLL_ATTEMPTS: '10',
        CHART_REPO_URL: chartRepo.url,
        COLLECT_INTERVAL_MS: '200',
        MUTATION_RATE_PER_S: '0',
      },
    }));
  });
  afterAll(async () => {
    await server?.stop();
    await appService?.stop();
    await developer?.stop();
    await chartRepo?.stop();
  });

  const task = async (taskId: string) => (await run(TaskAuditQuery, { taskId }, secret.opsToken)).task;
  const taskWhen = (
    taskId: string,
    what: string,
    done: (t: NonNullable<Awaited<ReturnType<typeof task>>>) => boolean,
  ) =>
    waitFor(async () => {
      const current = await task(taskId);
      return current && done(current) ? current : undefined;
    }, what);
  const event = (
    fields: { name: string; opID: string; state: string; reason?: string; message?: string },
    at: number,
  ) =>
    sendEvent(`${server.url}/events/app-state`, secret.eventSecret, {
      user: 'alice',
      marketSource: SOURCE,
      opType: 'install',
      createTime: new Date(Date.now() + at).toISOString(),
      ...fields,
    });
  async function install(appName: string, version: string, envs: { name: string; value: string }[] = []) {
    const result = (
      await run(InstallAppMutation, { input: { sourceId: SOURCE, appName, version, envs } }, secret.aliceToken)
    ).installApp;
    if (result.__typename !== 'InstallAppSuccess') throw new Error(`install refused: ${JSON.stringify(result)}`);
    return result.task.taskId;
  }
  async function retry(taskId: string) {
    const result = (await run(RetryTaskMutation, { input: { taskId } }, secret.aliceToken)).retryTask;
    if (result.__typename !== 'RetryTaskSuccess') throw new Error(`retry refused: ${JSON.stringify(result)}`);
    return result.task.taskId;
  }

  test('a paid install, rejections quoting the request, state events, listed apps and errors quoting tokens: no secret anywhere, and the messages still say what happened', async () => {
    // The apps it installs: comfyui, paid (product comfyui-license), and two free ones.
    const catalogue = seed(server.app.db);
    await catalogue.catalogApp({ name: 'comfyui', versions: ['0.3.7', '0.3.4'], price: '9.99' });
    await catalogue.catalogApp({ name: 'n8n', versions: ['1.70.1'] });
    await catalogue.catalogApp({ name: 'ghost', versions: ['5.104.2'] });
    const subscriptions: Subscription<unknown>[] = [];
    for (const token of [secret.aliceToken, secret.opsToken]) {
      for (const document of [
        TaskEventsSubscription,
        AppEventsSubscription,
        HistoryEventsSubscription,
        PaymentEventsSubscription,
        RuntimeEventsSubscription,
        RuntimeSnapshotSubscription,
      ] as TypedDocumentNode<unknown, Record<string, never>>[]) {
        subscriptions.push(await subscribe(server, document, {}, { token }));
      }
    }
    try {
      // 1. The purchase: the developer first fails quoting the signature, then has no record, then grants.
      developer.setBehaviour({
        respond: 'sequence',
        steps: [
          { respond: 'http-error', status: 500, body: { error: `could not verify jws ${secret.jws}` } },
          { respond: 'json', body: { code: 1501, message: `no record for signature=${secret.jws}` } },
          { respond: 'grant', vc: secret.vc },
        ],
      });
      const bought = (
        await run(PurchaseAppMutation, { input: { sourceId: SOURCE, appId: 'comfyui' } }, secret.aliceToken)
      ).purchaseApp;
      expect(bought).toMatchObject({ payment: { status: 'SIGNATURE_REQUIRED' } });
      await run(
        SubmitSignatureMutation,
        { input: { productId: 'comfyui-license', jws: secret.jws } },
        secret.aliceToken,
      );
      await run(
        SubmitPaymentTransactionMutation,
        { input: { sourceId: SOURCE, appId: 'comfyui', productId: 'comfyui-license', txHash: '0xc0ffee' } },
        secret.aliceToken,
      );
      await waitFor(async () => {
        const row = await server.app.db.payment.findFirst({ where: { userId: 'alice', appId: 'comfyui' } });
        return row?.vc === secret.vc ? row : undefined;
      }, 'the credential');
      expect(developer.requests.some((request) => JSON.stringify(request.body).includes(secret.jws))).toBe(true);

      // 2. The app service rejects the install quoting the whole request (HTTP 422).
      appService.setBehaviour('install', {
        respond: 'quote-request',
        status: 422,
        code: 422,
        prefix: 'invalid request ',
      });
      const first = await install('comfyui', '0.3.7', [
        { name: 'ADMIN_PASSWORD', value: secret.adminPassword },
        { name: 'TZ', value: 'Europe/Berlin' },
      ]);
      const rejected = await taskWhen(first, 'the rejection', (t) => t.status === 'FAILED');
      // The credential and the password did reach the app service: the rejection really quoted them.
      const sent = JSON.stringify(appService.requests.find((r) => r.path.endsWith('/comfyui/install'))?.body);
      expect(sent).toContain(secret.vc);
      expect(sent).toContain(secret.adminPassword);
      expect(rejected.error).toMatch(
        /^app service rejected install of comfyui: invalid request \{.*\[redacted\].*\(HTTP 422\)$/,
      );
      expect(rejected.error).toContain('"envName":"TZ","value":"Europe/Berlin"');
      expect(rejected.result).toMatchObject({
        backend_response: {
          code: 422,
          data: {
            request: {
              envs: expect.arrayContaining([
                { envName: 'VERIFIABLE_CREDENTIAL', value: '[redacted]' },
                { envName: 'ADMIN_PASSWORD', value: '[redacted]' },
                { envName: 'TZ', value: 'Europe/Berlin' },
              ]),
            },
          },
        },
      });
      // The app's row says the same, until status correction (every 200 ms here) removes the row
      // of an app the app service never had.
      if (rejected.app)
        expect(rejected.app.reason).toMatch(/^app service rejected install of comfyui: invalid request/);

      // 3. Again, rejected with code 422 in an HTTP 200, quoting the env as Go prints a struct.
      appService.setBehaviour('install', {
        respond: 'business-error',
        code: 422,
        message: `missing env values: [{EnvName:VERIFIABLE_CREDENTIAL Value:${secret.vc} ValueFrom:<nil>}]`,
        data: { type: 'appenv', missingValues: [{ envName: 'LICENSE_KEY' }], got: { vc: secret.vc } },
      });
      const second = await retry(first);
      const rejectedAgain = await taskWhen(second, 'the second rejection', (t) => t.status === 'FAILED');
      expect(rejectedAgain.error).toBe(
        'app service rejected install of comfyui: missing env values: [{EnvName:VERIFIABLE_CREDENTIAL Value:[redacted] ValueFrom:<nil>}]',
      );
      expect(rejectedAgain.result).toMatchObject({
        backend_response: {
          code: 422,
          data: { missingValues: [{ envName: 'LICENSE_KEY' }], got: { vc: '[redacted]' } },
        },
      });

      // 4. Accepted; the state events quote the credential (whole, then cut short) and the install fails.
      appService.setBehaviour('install', { respond: 'accept' });
      const third = await retry(second);
      const running = await taskWhen(third, 'the op id', (t) => t.status === 'RUNNING' && !!t.opId);
      const opID = running.opId as string;
      expect(
        await event({ name: 'comfyui', opID, state: 'downloading', message: `pulling with ${secret.vc}` }, 1000),
      ).toBe(202);
      expect(
        await event(
          {
            name: 'comfyui',
            opID,
            state: 'installFailed',
            reason: 'license rejected',
            message: `credential "${secret.vc.slice(0, 20)}…" is not valid for this node`,
          },
          2000,
        ),
      ).toBe(202);
      const failed = await taskWhen(third, 'the failure', (t) => t.status === 'FAILED');
      expect(failed.error).toBe(
        'install of comfyui failed on the app service (installFailed): license rejected: credential "[redacted]…" is not valid for this node',
      );

      // 5. Accepted and running, with a message quoting the signature.
      const fourth = await retry(third);
      const opID4 = (await taskWhen(fourth, 'the op id', (t) => t.status === 'RUNNING' && !!t.opId)).opId as string;
      await event({ name: 'comfyui', opID: opID4, state: 'running', message: `licensed by ${secret.jws}` }, 3000);
      const completed = await taskWhen(fourth, 'the paid install', (t) => t.status === 'COMPLETED');
      expect(completed.app).toMatchObject({ state: 'running' });

      // 6. An error quoting our service token and the event secret, shown to the user as UPSTREAM.
      const n8n = await install('n8n', '1.70.1');
      await taskWhen(n8n, 'n8n to run', (t) => t.status === 'RUNNING' && !!t.opId);
      appService.setBehaviour('cancel', {
        respond: 'http-error',
        status: 401,
        body: {
          code: 401,
          message: `X-Authorization ${secret.appServiceToken} refused; Authorization: Bearer ${secret.eventSecret}`,
        },
      });
      const cancel = (await run(CancelTaskMutation, { input: { taskId: n8n } }, secret.aliceToken)).cancelTask;
      expect(cancel).toMatchObject({
        code: 'UPSTREAM',
        message:
          'The app service could not cancel: app service refused our credentials for cancel of n8n: X-Authorization [redacted] refused; Authorization: Bearer [redacted] (HTTP 401)',
      });
      // The history has the request, then that it failed and why (redacted as answered).
      const cancels = await server.app.db.historyRecord.findMany({
        where: { app: 'n8n', type: 'ACTION_CANCEL' },
        orderBy: { id: 'asc' },
      });
      expect(cancels.map((record) => record.message)).toEqual([
        'cancel install n8n requested',
        `cancel install n8n failed: ${(cancel as { message: string }).message}`,
      ]);

      // 7. Reconciliation lists an app whose reason quotes the credential and message a token.
      appService.apps = [
        {
          name: 'uptime-kuma',
          owner: 'alice',
          state: 'installFailed',
          marketSource: SOURCE,
          statusTime: new Date(Date.now() + 4000).toISOString(),
          reason: `credential ${secret.vc} refused`,
          message: `callback with token=${secret.eventSecret}`,
        },
      ];
      const listed = await waitFor(async () => {
        const row = await server.app.db.appState.findFirst({ where: { userId: 'alice', appName: 'uptime-kuma' } });
        return row ?? undefined;
      }, 'the listed app');
      expect(listed).toMatchObject({
        reason: 'credential [redacted] refused',
        message: 'callback with token=[redacted]',
      });

      // 8. The chart repo fails quoting a user's token and the signature.
      chartRepo.setBehaviour('*', {
        respond: 'unsuccessful',
        message: `auth failed for token=${secret.aliceToken}, jws ${secret.jws}`,
      });
      await waitFor(async () => {
        const { chartRepo: status } = await run(ChartRepoErrorQuery, {}, secret.opsToken);
        return status?.lastError?.includes('auth failed') ? status : undefined;
      }, 'the chart repo failure');

      // 9. A last change every stream carries; events arrive in order, so all before it have arrived.
      const ghost = await install('ghost', '5.104.2');
      const ghostOp = (await taskWhen(ghost, 'ghost to run', (t) => t.status === 'RUNNING' && !!t.opId)).opId as string;
      await event({ name: 'ghost', opID: ghostOp, state: 'running' }, 5000);
      await taskWhen(ghost, 'ghost to complete', (t) => t.status === 'COMPLETED');
      const [tasks, apps, history, payments, runtime, snapshots] = subscriptions.slice(0, 6);
      for (const stream of [tasks, subscriptions[6]]) {
        await stream?.until((e) => JSON.stringify(e).includes(`"${ghost}"`) && JSON.stringify(e).includes('COMPLETED'));
      }
      for (const stream of [apps, subscriptions[7]]) {
        await stream?.until((e) => /"appName":"ghost","state":"running"/.test(JSON.stringify(e)));
      }
      for (const stream of [history, subscriptions[8]]) {
        await stream?.until(
          (e) => /SYSTEM_INSTALL_SUCCEED/.test(JSON.stringify(e)) && JSON.stringify(e).includes(ghost),
        );
      }
      for (const stream of [payments, subscriptions[9]]) {
        await stream?.until((e) => JSON.stringify(e).includes('PURCHASED'));
      }
      for (const stream of [runtime, subscriptions[10], snapshots, subscriptions[11]]) {
        await stream?.until((e) => JSON.stringify(e).includes(ghost) && JSON.stringify(e).includes('COMPLETED'));
      }
      for (const token of [secret.aliceToken, secret.opsToken]) {
        for (const query of AuditQueries) await run(query, {}, token);
      }

      // Everything a user or an operator can see.
      const stored = JSON.stringify([
        await server.app.db.task.findMany({ select: { taskId: true, error: true, result: true } }),
        await server.app.db.appState.findMany({ select: { appName: true, reason: true, message: true } }),
        await server.app.db.historyRecord.findMany(),
        await server.app.db.paymentNotification.findMany(),
      ]);
      const seen = {
        logs: server.logs.join('\n'),
        responses: JSON.stringify(responses),
        events: JSON.stringify(subscriptions.map((s) => s.received)),
        stored,
      };
      for (const [where, text] of Object.entries(seen)) expect(findLeak(text, secret), where).toBeNull();
      // The redactions are in what people read, next to what they need to act.
      expect(seen.responses).toContain('(HTTP 422)');
      expect(seen.events).toContain('[redacted]');
      // Debug lines were captured too (the upstream clients' call lines), and the warning of step 1.
      expect(seen.logs).toContain('"msg":"app service call"');
      expect(seen.logs).toContain('"msg":"credential query failed"');
      expect(seen.logs).toMatch(
        /developer service of seed-developer answered HTTP 500: could not verify jws \[redacted\]/,
      );
      expect(seen.logs).toMatch(/auth failed for token=\[redacted\], jws \[redacted\]/);
    } finally {
      for (const subscription of subscriptions) await subscription.close();
    }
  });
});
