import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { availableDatabases } from './support/databases.js';
import { AppsQuery, HistoryQuery, ViewerQuery } from './support/operations.js';
import { AUTH_ENV, dataOf, errorCodes, execute, startTestServer, type TestServer, TOKENS } from './support/server.js';

const [kind] = await availableDatabases();

describe('identity', () => {
  describe('with AUTH_TOKENS', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(kind ?? 'sqlite', { env: AUTH_ENV });
    });
    afterAll(() => server?.stop());

    test('a bearer token identifies the user and their role', async () => {
      expect(dataOf(await execute(server, ViewerQuery, {}, { token: TOKENS.alice })).viewer).toEqual({
        userId: 'alice',
        isAdmin: false,
      });
      expect(dataOf(await execute(server, ViewerQuery, {}, { token: TOKENS.ops })).viewer).toEqual({
        userId: 'ops',
        isAdmin: true,
      });
    });

    test.each([
      ['no credentials', {}],
      ['an unknown token', { authorization: 'Bearer not-a-known-token' }],
      ['a malformed header', { authorization: 'Basic YWxpY2U6eA==' }],
    ])('%s gets UNAUTHENTICATED with HTTP 401 and no data', async (_name, headers) => {
      const response = await execute(server, AppsQuery, {}, { headers });
      expect(response.status).toBe(401);
      expect(errorCodes(response)).toEqual(['UNAUTHENTICATED']);
      expect(response.data ?? null).toBeNull();
    });

    test('without credentials a document is not looked at: one naming unknown fields is 401 too, over POST and GET', async () => {
      const probe = '{ webhooks { id } }'; // `id` is no field of Webhook: valid, it would say so
      const post = await fetch(server.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: probe }),
      });
      const get = await fetch(`${server.graphqlUrl}?query=${encodeURIComponent(probe)}`);
      for (const response of [post, get]) {
        expect(response.status).toBe(401);
        const text = await response.text();
        expect(JSON.parse(text).errors.map((error: { extensions: { code: string } }) => error.extensions.code)).toEqual(
          ['UNAUTHENTICATED'],
        );
        expect(text).not.toMatch(/Cannot query field|Webhook/);
      }
    });

    test('the gateway header is ignored unless AUTH_USER_HEADER is configured', async () => {
      const response = await execute(server, ViewerQuery, {}, { headers: { 'x-bfl-user': 'alice' } });
      expect(errorCodes(response)).toEqual(['UNAUTHENTICATED']);
    });

    test('no token appears in the logs', async () => {
      await execute(server, ViewerQuery, {}, { token: TOKENS.alice });
      await execute(server, ViewerQuery, {}, { headers: { authorization: 'Bearer not-a-known-token' } });
      const logs = server.logs.join('\n');
      expect(logs).toContain('"userId":');
      for (const token of [...Object.values(TOKENS), 'not-a-known-token']) expect(logs).not.toContain(token);
    });
  });

  describe('behind a trusted gateway (AUTH_USER_HEADER)', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(kind ?? 'sqlite', {
        env: { AUTH_USER_HEADER: 'X-Bfl-User', AUTH_ADMIN_USERS: 'admin' },
      });
    });
    afterAll(() => server?.stop());

    test('the header names the user; configured users are admins', async () => {
      expect(dataOf(await execute(server, ViewerQuery, {}, { headers: { 'X-Bfl-User': 'bob' } })).viewer).toEqual({
        userId: 'bob',
        isAdmin: false,
      });
      expect(dataOf(await execute(server, ViewerQuery, {}, { headers: { 'X-Bfl-User': 'admin' } })).viewer).toEqual({
        userId: 'admin',
        isAdmin: true,
      });
      const bobsApps = dataOf(
        await execute(server, AppsQuery, { first: 50 }, { headers: { 'X-Bfl-User': 'bob' } }),
      ).apps;
      expect(bobsApps.edges.every((edge) => edge.node.userId === 'bob')).toBe(true);
    });

    test('without the header the request is unauthenticated, and the message does not name the header', async () => {
      const response = await execute(server, ViewerQuery, {});
      expect(response.status).toBe(401);
      expect(errorCodes(response)).toEqual(['UNAUTHENTICATED']);
      // Named, it told anyone who found a way past the gateway what to send to be any user.
      expect(response.errors?.[0]?.message).toBe(
        'Authentication required: send "Authorization: Bearer <token>", or come through the gateway',
      );
    });

    test('the header naming "system" (the user of the server\'s own history records) is 401 and reads nothing', async () => {
      const response = await execute(server, HistoryQuery, { first: 50 }, { headers: { 'X-Bfl-User': 'system' } });
      expect(response.status).toBe(401);
      expect(errorCodes(response)).toEqual(['UNAUTHENTICATED']);
      expect(response.errors?.[0]?.message).toBe('X-Bfl-User names a user id reserved for the server');
      expect(response.data ?? null).toBeNull();
    });
  });

  describe('local development mode (nothing configured)', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(kind ?? 'sqlite');
    });
    afterAll(() => server?.stop());

    test('every request runs as the single admin, on 127.0.0.1', async () => {
      expect(dataOf(await execute(server, ViewerQuery, {})).viewer).toEqual({ userId: 'admin', isAdmin: true });
      expect(new URL(server.url).hostname).toBe('127.0.0.1');
      const everyone = dataOf(await execute(server, AppsQuery, { first: 50 })).apps;
      expect(everyone.totalCount).toBe(await server.app.db.appState.count());
    });
  });
});
