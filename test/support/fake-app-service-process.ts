import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type AppStateEventBody, type RecordedRequest, sendEvent, startFakeAppService } from './fake-app-service.js';

/**
 * The tests' fake app service (fake-app-service.ts) as a process of its own, playing its
 * operations out the way the real one does: an accepted operation is listed at once
 * (`/all/apps`, under its op id), then moves through its states every `stepMs`
 * (pending → downloading 0/50/100 % → installing → initializing → running; uninstalling →
 * uninstalled) and reports each one with a state event to the one URL it was told (the load
 * balancer in front of the instances, as in a deployment). An event that does not get a 202
 * (connection refused or reset, 503 from an instance whose database could not take it) is sent
 * again until it does; an operation's events go out in order, each once the one before was
 * applied, while the operation itself moves on regardless.
 *
 * The test talks to it over IPC: see `startFakeAppServiceProcess`.
 */

/** A call the app service accepted: who asked for what, and the op id it answered. */
export interface AcceptedCall {
  kind: string;
  user: string;
  sourceId: string;
  app: string;
  opId: string | null;
}

export interface PlayoutStatus {
  /** Operations not yet at their final state. */
  active: number;
  /** Events not yet applied by an instance (being sent, or waiting behind an earlier one of their operation). */
  undelivered: number;
  /** Event deliveries that had to be retried. */
  retries: number;
  /** Events delivered (answered 202). */
  delivered: number;
}

type ToChild =
  | { type: 'configure'; id: number; eventUrl: string; secret: string; stepMs: number }
  | { type: 'calls'; id: number }
  | { type: 'status'; id: number };

type ToParent =
  | { type: 'ready'; url: string }
  | { type: 'configured'; id: number }
  | { type: 'calls'; id: number; calls: AcceptedCall[] }
  | { type: 'status'; id: number; status: PlayoutStatus };

export interface FakeAppServiceProcess {
  url: string;
  child: ChildProcess;
  /** Lines the process wrote (delivery problems), for failure messages. */
  output: string[];
  /** Where to send state events, with which secret, and how long each state lasts. */
  configure(options: { eventUrl: string; secret: string; stepMs: number }): Promise<void>;
  /** Every operation accepted so far, in order. */
  calls(): Promise<AcceptedCall[]>;
  status(): Promise<PlayoutStatus>;
  stop(): Promise<void>;
}

const SCRIPT = fileURLToPath(import.meta.url);

/** Starts the fake app service as a child process; resolves once it listens. */
export async function startFakeAppServiceProcess(): Promise<FakeAppServiceProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { ...process.env, FAKE_APP_SERVICE_PROCESS: '1' },
  });
  const output: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => output.push(line));
  createInterface({ input: child.stderr! }).on('line', (line) => output.push(line));
  const waiting = new Map<number, (message: ToParent) => void>();
  let nextId = 1;
  const url = await new Promise<string>((resolve, reject) => {
    child.on('message', (message: ToParent) => {
      if (message.type === 'ready') return resolve(message.url);
      if ('id' in message) {
        waiting.get(message.id)?.(message);
        waiting.delete(message.id);
      }
    });
    child.once('exit', (code, signal) =>
      reject(new Error(`the fake app service exited (${signal ?? code}):\n${output.join('\n')}`)),
    );
  });
  const ask = <T extends ToParent>(message: Omit<ToChild, 'id'>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        return reject(new Error(`the fake app service has exited:\n${output.join('\n')}`));
      }
      const id = nextId++;
      waiting.set(id, resolve as (message: ToParent) => void);
      child.send({ ...message, id });
    });
  return {
    url,
    child,
    output,
    async configure(options) {
      await ask({ type: 'configure', ...options });
    },
    async calls() {
      return (await ask<Extract<ToParent, { type: 'calls' }>>({ type: 'calls' })).calls;
    },
    async status() {
      return (await ask<Extract<ToParent, { type: 'status' }>>({ type: 'status' })).status;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The child process.

interface Listed {
  name: string;
  owner: string;
  marketSource: string;
  opID: string | null;
  opType: string;
  state: string;
  progress?: string;
  statusTime: string;
}

const INSTALL_STEPS: [string, string?][] = [
  ['downloading', '0'],
  ['downloading', '50'],
  ['downloading', '100'],
  ['installing'],
  ['initializing'],
  ['running'],
];

async function main(): Promise<void> {
  const send = (message: ToParent) => process.send?.(message);
  let target: { eventUrl: string; secret: string; stepMs: number } | null = null;
  const calls: AcceptedCall[] = [];
  const status: PlayoutStatus = { active: 0, undelivered: 0, retries: 0, delivered: 0 };
  let stopping = false;
  /** Settles once the target is configured: operations accepted before that wait for it. */
  let configured!: () => void;
  const ready = new Promise<void>((resolve) => {
    configured = resolve;
  });

  const fake = await startFakeAppService({ onAccepted: (kind, request, opId) => accept(kind, request, opId) });

  /** The app's entry in `/all/apps`, moved to `state`, and the event that reports it. */
  const move = (entry: Listed, state: string, progress?: string): AppStateEventBody => {
    // Strictly later than the previous state: an instance ignores events no newer than the app's state.
    const previous = entry.statusTime ? Date.parse(entry.statusTime) : 0;
    entry.statusTime = new Date(Math.max(Date.now(), previous + 1)).toISOString();
    entry.state = state;
    if (progress === undefined) delete entry.progress;
    else entry.progress = progress;
    return {
      name: entry.name,
      user: entry.owner,
      marketSource: entry.marketSource,
      ...(entry.opID ? { opID: entry.opID } : {}),
      opType: entry.opType,
      state,
      ...(progress === undefined ? {} : { progress }),
      createTime: entry.statusTime,
    };
  };

  /** Sends one event until an instance applies it (202), as the app service retries its callbacks. */
  const deliver = async (event: AppStateEventBody): Promise<void> => {
    await ready;
    let pauseMs = 50;
    while (!stopping) {
      const { eventUrl, secret } = target!;
      let outcome: string;
      try {
        const code = await sendEvent(eventUrl, secret, event);
        if (code === 202) {
          status.delivered += 1;
          return;
        }
        outcome = `HTTP ${code}`;
        if (code >= 400 && code < 500) {
          console.error(`event ${event.name}/${event.user} ${event.state} refused for good: ${outcome}`);
          return;
        }
      } catch (error) {
        outcome = String((error as Error & { cause?: Error }).cause?.message ?? (error as Error).message);
      }
      status.retries += 1;
      console.error(`event ${event.name}/${event.user} ${event.state} not applied (${outcome}); sending it again`);
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
      pauseMs = Math.min(2 * pauseMs, 1000);
    }
  };

  const pause = () => new Promise((resolve) => setTimeout(resolve, target?.stepMs ?? 0));

  function accept(kind: string, request: RecordedRequest, opId: string | null): void {
    const app = decodeURIComponent(/\/apps\/([^/]+)\//.exec(request.path)?.[1] ?? '');
    const user = String(request.headers['x-market-user'] ?? '');
    const sourceId = String(request.headers['x-market-source'] ?? 'market.olares');
    calls.push({ kind, user, sourceId, app, opId });
    if (kind === 'cancel') return; // not played out here
    const opType = kind === 'clone' ? 'install' : kind === 'suspend' ? 'stop' : kind;
    const key = (entry: Listed) => entry.name === app && entry.owner === user && entry.marketSource === sourceId;
    let entry = (fake.apps as Listed[]).find(key);
    if (!entry) {
      entry = { name: app, owner: user, marketSource: sourceId, opID: opId, opType, state: '', statusTime: '' };
      fake.apps.push(entry);
    }
    Object.assign(entry, { opID: opId, opType });
    const listedEntry = entry;
    const steps: [string, string?][] =
      kind === 'uninstall'
        ? [['uninstalling'], ['uninstalled']]
        : kind === 'upgrade'
          ? [['upgrading'], ['initializing'], ['running']]
          : kind === 'suspend'
            ? [['stopped']]
            : kind === 'resume'
              ? [['running']]
              : INSTALL_STEPS;
    status.active += 1;
    // The operation moves on by itself; its events go out in order, each once the one before was applied.
    let delivering = Promise.resolve();
    const report = (event: AppStateEventBody) => {
      status.undelivered += 1;
      delivering = delivering
        .then(() => deliver(event))
        .finally(() => {
          status.undelivered -= 1;
        });
    };
    void (async () => {
      const first = { uninstall: 'uninstalling', suspend: 'stopping', resume: 'resuming' }[kind] ?? 'pending';
      report(move(listedEntry, first));
      for (const [state, progress] of steps) {
        await pause();
        if (stopping) return;
        report(move(listedEntry, state, progress));
      }
      if (kind === 'uninstall') fake.apps.splice(fake.apps.indexOf(listedEntry), 1);
      status.active -= 1;
    })();
  }

  process.on('message', (message: ToChild) => {
    switch (message.type) {
      case 'configure':
        target = { eventUrl: message.eventUrl, secret: message.secret, stepMs: message.stepMs };
        configured();
        return send({ type: 'configured', id: message.id });
      case 'calls':
        return send({ type: 'calls', id: message.id, calls });
      case 'status':
        return send({ type: 'status', id: message.id, status: { ...status } });
    }
  });
  const stop = () => {
    stopping = true;
    void fake.stop().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('disconnect', stop); // the test process went away
  send({ type: 'ready', url: fake.url });
}

if (process.env.FAKE_APP_SERVICE_PROCESS === '1' && process.send) {
  void main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
