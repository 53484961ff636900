import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/**
 * Server processes started the way an operator starts them (`npm start`, or the node command it
 * runs), with their output read line by line: tests wait for a log line or for the exit, never
 * for time to pass.
 */

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** What `npm start` runs once npm and its shell are out of the way. */
export const SERVER_COMMAND = [process.execPath, '--import', 'tsx', 'src/index.ts'];

/** Preloaded (`--import`), runs a process on a clock TEST_CLOCK_SKEW_MS ahead (negative: behind) of the machine's. */
export const SKEWED_CLOCK = fileURLToPath(new URL('./skewed-clock.mjs', import.meta.url));

/** The environment of a server process whose clock runs `skewMs` ahead (negative: behind) of the machine's. */
export function skewedClockEnv(skewMs: number): Record<string, string> {
  return { NODE_OPTIONS: `--import ${SKEWED_CLOCK}`, TEST_CLOCK_SKEW_MS: String(skewMs) };
}

/** The log line of a server that has started. */
export const LISTENING = 'Market Runtime GraphQL API listening';

export interface LogLine {
  msg?: string;
  level?: number;
  [key: string]: unknown;
}

export interface ServerProcess {
  child: ChildProcess;
  /** Every line of stdout and stderr, in order. */
  output: string[];
  /** The JSON log lines among them. */
  logs: LogLine[];
  /** Resolves with the first log line (past or future) that `matches`; rejects if the process exits first. */
  waitForLog(matches: (line: LogLine) => boolean, what: string): Promise<LogLine>;
  /** Resolves with the exit code (or the signal) once the process has exited and its output was read to the end. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The environment of a test server: local development mode, on `databaseUrl`, port 0 unless given. */
export function serverEnv(databaseUrl: string, env: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: databaseUrl,
    PORT: '0',
    HOST: '127.0.0.1',
    AUTH_TOKENS: '',
    AUTH_USER_HEADER: '',
    DEMO_DATA: '0',
    LOG_LEVEL: 'info',
    ...env,
  };
}

/** Every process a test started, so that none outlives it (see `killLeftovers`). */
const started = new Set<ChildProcess>();

export function startProcess(command: string[], env: NodeJS.ProcessEnv): ServerProcess {
  const [file, ...args] = command as [string, ...string[]];
  const child = spawn(file, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  const output: string[] = [];
  const logs: LogLine[] = [];
  const watchers = new Set<(line: LogLine) => void>();
  // On 'close', once its output has been read to the end, not on 'exit', which can come first: a
  // test that read the logs once the process had exited missed its last lines now and then (a
  // rolling-restart test found no "handed the running tasks over" line, and counted 0 handed over).
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  const read = (line: string) => {
    output.push(line);
    let entry: LogLine;
    try {
      entry = JSON.parse(line) as LogLine;
    } catch {
      return; // npm's banner, a plain message
    }
    logs.push(entry);
    for (const watcher of watchers) watcher(entry);
  };
  // Both streams are read for the whole life of the child, so it never blocks on a full pipe.
  createInterface({ input: child.stdout! }).on('line', read);
  createInterface({ input: child.stderr! }).on('line', read);

  const waitForLog = (matches: (line: LogLine) => boolean, what: string) =>
    new Promise<LogLine>((resolve, reject) => {
      const seen = logs.find(matches);
      if (seen) return resolve(seen);
      const watcher = (line: LogLine) => {
        if (!matches(line)) return;
        watchers.delete(watcher);
        resolve(line);
      };
      watchers.add(watcher);
      void exited.then(({ code, signal }) => {
        if (!watchers.delete(watcher)) return;
        reject(new Error(`the server exited (${signal ?? code}) before ${what}:\n${output.join('\n')}`));
      });
    });
  return { child, output, logs, waitForLog, exited };
}

/** Waits for the server's "listening" line and returns its GraphQL URL. */
/**
 * A service a test runs beside the servers (nginx, PgBouncer), started and resolved once a line
 * of its standard error says it is up (`ready`); `output` keeps every line, for a failure's message.
 */
export async function spawnUntilReady(
  command: string,
  args: string[],
  ready: RegExp,
  what: string,
): Promise<{ child: ChildProcess; output: string[]; exited: Promise<unknown> }> {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const output: string[] = [];
  const exited = once(child, 'exit');
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on('line', (line) => {
      output.push(line);
      if (ready.test(line)) resolve();
    });
    void exited.then(() => reject(new Error(`${what}:\n${output.join('\n')}`)));
  });
  return { child, output, exited };
}

export async function listeningUrl(server: ServerProcess): Promise<URL> {
  const line = await server.waitForLog((entry) => entry.msg === LISTENING, 'it listened');
  return new URL(line.url as string);
}

/** The processes below `pid` (children, grandchildren…) now, from /proc. */
export function processTreeOf(pid: number): SeenProcess[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const found: SeenProcess[] = [];
  const visit = (parent: number) => {
    for (const child of children.get(parent) ?? []) {
      const command = commandLineOf(child);
      if (command) found.push({ pid: child, parent, command });
      visit(child);
    }
  };
  visit(pid);
  return found;
}

/** The command line of a process, or null once it is gone. */
export function commandLineOf(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return null;
  }
}

/** A process seen while a test ran: its command line tells it from a later process with the same pid. */
export interface SeenProcess {
  pid: number;
  parent: number;
  command: string[];
}

/** Whether `seen` still runs (the same pid with the same command line). */
export function stillRunning(seen: SeenProcess): boolean {
  return commandLineOf(seen.pid)?.join(' ') === seen.command.join(' ');
}

/** SIGKILLs whatever a test left running: the processes it started and those it saw below them. */
export async function killLeftovers(seen: Iterable<SeenProcess> = []): Promise<void> {
  for (const each of seen) {
    if (stillRunning(each)) process.kill(each.pid, 'SIGKILL');
  }
  for (const child of started) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    started.delete(child);
  }
}
