import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { LeaderLease, soleLeader } from '../src/events/leader-lease.js';
import { createLogger } from '../src/platform/logger.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { RuntimeEventsSubscription, RuntimeSnapshotQuery } from './support/operations.js';
import {
  killLeftovers,
  listeningUrl,
  SERVER_COMMAND,
  type ServerProcess,
  serverEnv,
  skewedClockEnv,
  startProcess,
} from './support/process.js';
import { deleteKeys, REDIS_URL, redisAvailable, redisTarget, redisUrlVia, uniquePrefix } from './support/redis.js';
import { dataOf, execute, waitFor } from './support/server.js';
import { subscribe } from './support/subscriptions.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

/**
 * Once-per-cluster work runs on one leader, the holder of a Redis lease: two leases on one key
 * (one of them behind a TCP proxy the test cuts), then two server processes, one of them killed.
 */

const redisUp = await redisAvailable();
const databases = await availableDatabases();

/** Renewed every 300 ms; a leader that cannot renew stops within 750 ms of its last renewal. */
const LEASE_MS = 900;
const RENEW_MS = LEASE_MS / 3;

describe.runIf(redisUp)('LeaderLease on a real Redis', () => {
  const prefix = uniquePrefix();
  const key = `${prefix}leader`;
  const leases: LeaderLease[] = [];
  const proxies: TcpProxy[] = [];
  let redis: Redis;

  const lease = (instance: string, url = REDIS_URL) => {
    const created = new LeaderLease({ url, prefix, instance, leaseMs: LEASE_MS, logger: createLogger('silent') });
    leases.push(created);
    return created;
  };
  /** Resolves with performance.now() at the next time `lease` begins (true) or stops (false) leading. */
  const next = (of: LeaderLease, leading: boolean) =>
    new Promise<number>((resolve) => {
      const stop = of.onChange((now) => {
        if (now !== leading) return;
        stop();
        resolve(performance.now());
      });
    });

  beforeAll(() => {
    redis = new Redis(REDIS_URL);
  });
  afterEach(async () => {
    for (const proxy of proxies.splice(0)) proxy.restore();
    await Promise.all(leases.splice(0).map((each) => each.stop()));
    await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
    await redis.del(key);
  });
  afterAll(async () => {
    redis?.disconnect();
    await deleteKeys(prefix);
  });

  test('of two instances exactly one leads, and both know which', async () => {
    const a = lease('a');
    const b = lease('b');
    await a.start();
    await b.start();
    expect([a.isLeader, b.isLeader]).toEqual([true, false]);
    expect(a.status()).toMatchObject({ leader: true, holder: 'a', leaseMs: LEASE_MS });
    expect(b.status()).toMatchObject({ leader: false, holder: 'a', since: null });
    expect(await redis.get(key)).toMatch(/^a /);
    expect(await redis.pttl(key)).toBeGreaterThan(LEASE_MS - RENEW_MS - 100);
  });

  test('a lease released on a graceful stop is taken by the other instance within one renew interval', async () => {
    const a = lease('a');
    const b = lease('b');
    await a.start();
    await b.start();
    const taken = next(b, true);
    const releasedAt = performance.now();
    await a.stop();
    expect(a.isLeader).toBe(false);
    const takenAt = await taken;
    expect(takenAt - releasedAt).toBeLessThanOrEqual(RENEW_MS + 150);
    expect(b.status()).toMatchObject({ leader: true, holder: 'b' });
  });

  test('a leader cut off from Redis stops leading before its lease expires; the other takes over only once it has', async () => {
    const proxy = await startTcpProxy(redisTarget());
    proxies.push(proxy);
    const x = lease('x', redisUrlVia(proxy));
    const y = lease('y');
    await x.start();
    await y.start();
    expect(x.isLeader).toBe(true);
    const xStopped = next(x, false);
    const yTookOver = new Promise<{ at: number; xLeads: boolean }>((resolve) => {
      y.onChange((leading) => {
        if (leading) resolve({ at: performance.now(), xLeads: x.isLeader });
      });
    });

    proxy.cut('hold');
    const cutAt = performance.now();
    // Read after the cut: the lease cannot be renewed any more, so it expires this long after.
    const expiresAt = cutAt + (await redis.pttl(key));

    const stoppedAt = await xStopped;
    expect(stoppedAt).toBeLessThan(expiresAt);
    expect(stoppedAt - cutAt).toBeLessThanOrEqual(RENEW_MS + 100);
    expect(x.status()).toMatchObject({ leader: false, holder: null });
    const { at: tookOverAt, xLeads } = await yTookOver;
    expect(xLeads).toBe(false);
    expect(tookOverAt).toBeGreaterThanOrEqual(expiresAt - 5);
    expect(tookOverAt - cutAt).toBeLessThanOrEqual(LEASE_MS + RENEW_MS + 150);

    // Back on the network, x follows y.
    proxy.restore();
    await waitFor(async () => (x.status().holder === 'y' ? true : undefined), 'x to see y lead');
    expect([x.isLeader, y.isLeader]).toEqual([false, true]);
  });

  test('a connection that drops logs one claim failed line, and claims work again once it is back', async () => {
    const proxy = await startTcpProxy(redisTarget());
    proxies.push(proxy);
    const lines: { msg: string; level: number }[] = [];
    const logger = createLogger('info', { destination: { write: (line: string) => lines.push(JSON.parse(line)) } });
    const x = new LeaderLease({ url: redisUrlVia(proxy), prefix, instance: 'x', leaseMs: LEASE_MS, logger });
    leases.push(x);
    await x.start();
    const stopped = next(x, false);
    proxy.cut('refuse');
    await stopped;
    // A few more failed claims, which say nothing more.
    await waitFor(async () => (x.status().lastError && !x.isLeader ? true : undefined), 'claims to fail');
    const leads = next(x, true);
    proxy.restore();
    await leads;
    const said = lines.map((line) => line.msg).filter((msg) => msg.startsWith('leader lease'));
    expect(said).toEqual(['leader lease: claim failed', 'leader lease: claims work again']);
    expect(lines.find((line) => line.msg === 'leader lease: claim failed')?.level).toBe(40);
  });

  test('a lease whose connection lost commands (a network that dropped packets) reconnects and can lead again', async () => {
    const proxy = await startTcpProxy(redisTarget());
    proxies.push(proxy);
    const x = lease('x', redisUrlVia(proxy));
    const y = lease('y');
    await x.start();
    await y.start();
    expect(x.isLeader).toBe(true);

    // Packets dropped both ways on the open connection: x's claims time out, y takes over.
    proxy.freeze();
    await waitFor(async () => (y.isLeader ? true : undefined), 'y to lead once x could not renew');
    expect(x.isLeader).toBe(false);
    // The network carries bytes again; what was sent meanwhile is lost for good.
    proxy.restore({ dropHeld: false });
    await waitFor(async () => (x.status().holder === 'y' ? true : undefined), 'x to see y lead');
    expect(x.status().lastError).toBeNull();

    // y leaves: x must be able to take over, knowing it leads.
    await y.stop();
    await waitFor(async () => (x.isLeader ? true : undefined), 'x to lead after y left');
    expect(await redis.get(key)).toMatch(/^x /);
  });

  test('a leader whose event loop stalled past its lease knows at once that it no longer leads', async () => {
    const a = lease('a');
    await a.start();
    expect(a.isLeader).toBe(true);
    const until = performance.now() + LEASE_MS;
    while (performance.now() < until) {
      // a stalled event loop: no timer, no renewal
    }
    // Asked before any timer could run: a job about to start must not.
    expect(a.isLeader).toBe(false);
    expect(a.status().leader).toBe(false);
  });

  test('without Redis the process always leads', async () => {
    const sole = soleLeader();
    await sole.start();
    expect(sole.isLeader).toBe(true);
    await sole.stop();
  });
});

/** Short enough for a test, and the bound it promises: a killed leader is replaced within this. */
const SERVER_LEASE_MS = 1500;
const FAILOVER_BOUND_MS = SERVER_LEASE_MS + SERVER_LEASE_MS / 3;
const CLUSTER_WIDE = ['chart_repo', 'cluster', 'history_cleanup', 'payment_polling', 'status_correction', 'syncer'];
const PER_PROCESS = ['app_service', 'collector', 'database', 'outbox', 'pubsub', 'task_engine'];
/** INSTANCE_SILENCE_MS and STOPPED_COMPONENT_RETENTION_MS of the servers below. */
const SILENCE_MS = 1000;
const RETENTION_MS = 1500;

/** The instances a server logged as not heard from (the leader's sweep). */
function notHeardFrom(server: ServerProcess): { instance: unknown }[] {
  return server.logs.filter((line) => line.msg === 'instance not heard from').map(({ instance }) => ({ instance }));
}

interface Component {
  name: string;
  state: string;
  metrics: Record<string, unknown>;
}

async function componentsOf(url: URL): Promise<Map<string, Component>> {
  const { runtimeSnapshot } = dataOf(await execute({ graphqlUrl: url.toString() }, RuntimeSnapshotQuery, {}));
  return new Map(runtimeSnapshot.components.map((component) => [component.name, component as Component]));
}

describe.runIf(redisUp && databases.includes('postgresql'))('leader election across server processes', () => {
  const prefix = uniquePrefix();
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase('postgresql');
  }, 60_000);
  afterAll(async () => {
    await killLeftovers();
    await database?.drop();
    await deleteKeys(prefix);
  }, 60_000);

  /** The environment of an instance of these tests' clusters (`under`: a prefix of its own, within the file's). */
  const clusterEnv =
    (under: string) =>
    (instance: string, extra: Record<string, string> = {}) =>
      serverEnv(database.url, {
        REDIS_URL,
        REDIS_PREFIX: `${prefix}${under}`,
        INSTANCE_NAME: instance,
        LEADER_LEASE_MS: String(SERVER_LEASE_MS),
        COLLECT_INTERVAL_MS: '200',
        INSTANCE_SILENCE_MS: String(SILENCE_MS),
        STOPPED_COMPONENT_RETENTION_MS: String(RETENTION_MS),
        ...extra,
      });

  test('one of two instances runs the periodic work; SIGKILLed, it is replaced within LEADER_LEASE_MS + a third', async () => {
    const env = clusterEnv('');
    const servers: Record<string, ServerProcess> = { a: startProcess(SERVER_COMMAND, env('a')) };
    const urls: Record<string, URL> = { a: await listeningUrl(servers.a as ServerProcess) };
    servers.b = startProcess(SERVER_COMMAND, env('b'));
    urls.b = await listeningUrl(servers.b);

    // Both runtimes show each instance's process components and one of each cluster-wide one.
    const expected = [...CLUSTER_WIDE, ...PER_PROCESS.flatMap((name) => [`${name}@a`, `${name}@b`])].sort();
    for (const url of [urls.a, urls.b] as URL[]) {
      const components = await waitFor(async () => {
        const seen = await componentsOf(url);
        return expected.every((name) => seen.has(name)) ? seen : undefined;
      }, `the components of both instances on ${url}`);
      expect([...components.keys()].sort()).toEqual(expected);
    }
    const { metrics } = (await componentsOf(urls.b as URL)).get('cluster') as Component;
    expect(metrics).toMatchObject({ leaseMs: SERVER_LEASE_MS });
    const leader = metrics.leader as string;
    const follower = leader === 'a' ? 'b' : 'a';
    expect(['a', 'b']).toContain(leader);
    const leading = (server: ServerProcess) => server.logs.filter((line) => line.msg === 'leading the cluster');
    expect(leading(servers[leader] as ServerProcess)).toHaveLength(1);
    expect(leading(servers[follower] as ServerProcess)).toHaveLength(0);

    // Two silences on: neither live instance was taken for gone (live ones republish every cycle).
    const firstSeen = Date.parse(
      (await componentsOf(urls[follower] as URL)).get(`collector@${leader}`)?.metrics.lastCycleAt as string,
    );
    await waitFor(async () => {
      const lastCycleAt = (await componentsOf(urls[follower] as URL)).get(`collector@${leader}`)?.metrics.lastCycleAt;
      return Date.parse(lastCycleAt as string) - firstSeen >= 2 * SILENCE_MS ? true : undefined;
    }, 'two silences of collect cycles');
    for (const server of Object.values(servers)) expect(notHeardFrom(server)).toEqual([]);
    const events = await subscribe({ url: (urls[follower] as URL).origin }, RuntimeEventsSubscription, {});
    const before = await componentsOf(urls[follower] as URL);

    // SIGKILL: no release, the lease has to expire.
    const killedAt = Date.now();
    (servers[leader] as ServerProcess).child.kill('SIGKILL');
    await (servers[leader] as ServerProcess).exited;
    const tookOver = await (servers[follower] as ServerProcess).waitForLog(
      (line) => line.msg === 'leading the cluster',
      'the follower to take over',
    );
    const takeoverMs = (tookOver.time as number) - killedAt;
    const shown = await waitFor(async () => {
      const cluster = (await componentsOf(urls[follower] as URL)).get('cluster');
      return cluster?.metrics.leader === follower ? Date.now() - killedAt : undefined;
    }, 'the runtime to show the new leader');
    console.info(`failover: lease taken ${takeoverMs} ms after the SIGKILL, shown in the runtime after ${shown} ms`);
    expect(takeoverMs).toBeLessThanOrEqual(FAILOVER_BOUND_MS + 100);
    expect(shown).toBeLessThanOrEqual(FAILOVER_BOUND_MS + 1000);

    // The periodic work moved: the new leader's history cleanup has run since.
    await waitFor(async () => {
      const cleanup = (await componentsOf(urls[follower] as URL)).get('history_cleanup');
      const lastRunAt = cleanup?.metrics.lastRunAt;
      return typeof lastRunAt === 'string' && Date.parse(lastRunAt) >= killedAt ? true : undefined;
    }, 'history cleanup to run on the new leader');

    // The killed instance's components show STOPPED, then leave the runtime (live, and in queries).
    const gone = PER_PROCESS.map((name) => `${name}@${leader}`);
    await events.until(
      () => gone.every((name) => events.received.some((e) => e.runtimeEvents.removedComponent === name)),
      10_000,
    );
    const seen = events.received;
    await events.close();
    for (const name of gone) {
      const removedAt = seen.findIndex((e) => e.runtimeEvents.removedComponent === name);
      expect(seen[removedAt]?.runtimeEvents.kind).toBe('COMPONENT_REMOVED');
      // One the killed instance still said was STOPPED itself (a part not started yet) is only removed.
      if (before.get(name)?.state === 'STOPPED') continue;
      const stoppedAt = seen.findIndex((e) => e.runtimeEvents.component?.name === name);
      expect(seen[stoppedAt]?.runtimeEvents.component).toMatchObject({
        state: 'STOPPED',
        message: expect.stringMatching(new RegExp(`^instance ${leader} not heard from since \\d{4}-`)),
      });
      expect(removedAt).toBeGreaterThan(stoppedAt);
    }
    expect(seen.filter((e) => e.runtimeEvents.component?.name === `database@${leader}`)).toHaveLength(1);
    // The new leader's jobs, not run yet at its first cycle, left the last leader's reports of
    // them standing: none showed STOPPED "not started" meanwhile.
    const notStarted = seen.filter(
      (e) =>
        CLUSTER_WIDE.includes(e.runtimeEvents.component?.name ?? '') && e.runtimeEvents.component?.state === 'STOPPED',
    );
    expect(notStarted.map((e) => e.runtimeEvents.component?.message)).toEqual([]);
    const left = [...(await componentsOf(urls[follower] as URL)).keys()].sort();
    expect(left).toEqual([...CLUSTER_WIDE, ...PER_PROCESS.map((name) => `${name}@${follower}`)].sort());
    expect(notHeardFrom(servers[follower] as ServerProcess)).toEqual([{ instance: leader }]);
  }, 120_000);

  test('an instance stopped with SIGTERM shows STOPPED on the other, then leaves after the retention; while it ran with another TASK_LEASE_MS, the cluster said so', async () => {
    const env = clusterEnv('graceful:');
    const staying = startProcess(SERVER_COMMAND, env('c'));
    const url = await listeningUrl(staying);
    // A shorter lease on one instance takes over the others' live tasks: the cluster says so.
    const leaving = startProcess(SERVER_COMMAND, env('d', { TASK_LEASE_MS: '20000' }));
    await listeningUrl(leaving);
    const gone = PER_PROCESS.map((name) => `${name}@d`);
    await waitFor(async () => {
      const seen = await componentsOf(url);
      return gone.every((name) => seen.has(name)) ? true : undefined;
    }, "the leaving instance's components on the other");
    const differing = await waitFor(async () => {
      const cluster = (await componentsOf(url)).get('cluster');
      return cluster?.state === 'DEGRADED' ? cluster : undefined;
    }, 'the cluster to show the differing lease');
    expect((differing as Component & { message: string }).message).toBe(
      'settings differ between instances (every instance must have the same): TASK_LEASE_MS: 30000 on c, 20000 on d',
    );
    // From the sequence before the stop: the subscription may be registered after the stop's events
    // (the client's `connected` is the connection's, not the operation's), and the buffer replays them.
    const before = dataOf(await execute({ graphqlUrl: url.toString() }, RuntimeSnapshotQuery, {}));
    const events = await subscribe({ url: url.origin }, RuntimeEventsSubscription, {
      since: before.runtimeSnapshot.sequence,
    });

    leaving.child.kill('SIGTERM');
    await leaving.exited;
    await events.until(
      () => gone.every((name) => events.received.some((e) => e.runtimeEvents.removedComponent === name)),
      10_000,
    );
    await events.close();
    const seen = events.received;
    for (const name of gone) {
      const stoppedAt = seen.findIndex((e) => e.runtimeEvents.component?.name === name);
      expect(seen[stoppedAt]?.runtimeEvents.component).toMatchObject({ state: 'STOPPED', message: 'instance stopped' });
      expect(seen.findIndex((e) => e.runtimeEvents.removedComponent === name)).toBeGreaterThan(stoppedAt);
    }
    expect([...(await componentsOf(url)).keys()].filter((name) => name.endsWith('@d'))).toEqual([]);
    // It said it stopped: never taken for gone silent.
    expect(notHeardFrom(staying)).toEqual([]);
    // The one left agrees with itself.
    await waitFor(
      async () => ((await componentsOf(url)).get('cluster')?.state === 'RUNNING' ? true : undefined),
      'the cluster to agree again',
    );
  }, 120_000);

  test('an instance whose clock runs behind by more than the silence is not taken for gone', async () => {
    // A longer silence than the other tests': a loaded machine stalling an instance for one would
    // be a real silence, and this test is about clocks.
    const silenceMs = 3 * SILENCE_MS;
    const env = (instance: string, extra: Record<string, string> = {}) =>
      clusterEnv('skewed:')(instance, { INSTANCE_SILENCE_MS: String(silenceMs), ...extra });
    const leader = startProcess(SERVER_COMMAND, env('e'));
    const url = await listeningUrl(leader);
    await leader.waitForLog((line) => line.msg === 'leading the cluster', 'e to lead');
    // Five silences behind: on each instance's own clock the leader swept it at every cycle.
    const behind = startProcess(SERVER_COMMAND, env('f', skewedClockEnv(-5 * silenceMs)));
    await listeningUrl(behind);
    const cycleOfF = async () =>
      (await componentsOf(url)).get('collector@f')?.metrics.lastCycleAt as string | undefined;
    const firstSeen = Date.parse(await waitFor(cycleOfF, "f's collector on the leader", 30_000));
    await waitFor(
      async () => {
        const lastCycleAt = await cycleOfF();
        return lastCycleAt && Date.parse(lastCycleAt) - firstSeen >= 2 * silenceMs ? true : undefined;
      },
      'two silences of collect cycles of f',
      30_000,
    );
    expect(notHeardFrom(leader), leader.output.join('\n')).toEqual([]);
    const ofF = [...(await componentsOf(url)).values()].filter(({ name }) => name.endsWith('@f'));
    expect(ofF.map(({ name }) => name).sort()).toEqual(PER_PROCESS.map((name) => `${name}@f`));
    expect(ofF.filter(({ state }) => state === 'STOPPED')).toEqual([]);
    for (const server of [behind, leader]) server.child.kill('SIGTERM');
    await Promise.all([behind.exited, leader.exited]);
  }, 120_000);
});
