import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { READINESS_TIMEOUT_MS } from '../src/http/readiness.js';
import { envSchema } from '../src/platform/config-env.js';
import { waitFor } from './support/server.js';

/**
 * The deployment artefacts (Dockerfile, docker-compose.yml, deploy/), checked without a container
 * engine: what the image would copy exists and is in the build context, the image runs node as a
 * non-root user, the manifests parse and agree with the server (probe paths and port, grace period,
 * variables), production dependencies cover every run-time import, and the pre-transpiled build
 * (`npm run build`) migrates a database and serves a query from a directory laid out like the
 * image: package.json, node_modules, dist/, prisma/migrations/ and nothing else of the repository.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const run = promisify(execFile);
const require = createRequire(import.meta.url);

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML, walked by key path; the assertions are its type checks.
type Yaml = Record<string, any>;

// ---------------------------------------------------------------------------------------------
// Dockerfile and .dockerignore

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name: string | undefined;
  instructions: Instruction[];
}

function dockerfileStages(text: string): Stage[] {
  const stages: Stage[] = [];
  const logical = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  for (const line of logical) {
    const [, op = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (op.toUpperCase() === 'FROM') {
      const [, from = '', name] = /^(\S+)(?:\s+AS\s+(\S+))?/i.exec(args) ?? [];
      stages.push({ from, name, instructions: [] });
    } else if (stages.length) {
      stages.at(-1)!.instructions.push({ op: op.toUpperCase(), args });
    }
  }
  return stages;
}

/** COPY's sources and destination, with its flags apart. */
function copyArgs(args: string): { from: string | undefined; sources: string[]; dest: string } {
  const words = args.split(/\s+/);
  const from = words.find((word) => word.startsWith('--from='))?.slice('--from='.length);
  const paths = words.filter((word) => !word.startsWith('--'));
  return { from, sources: paths.slice(0, -1), dest: paths.at(-1)! };
}

/** Docker's .dockerignore rule: the last pattern matching the path or one of its parents decides. */
function excludedByDockerignore(patterns: string[], file: string): boolean {
  const toRegExp = (glob: string) =>
    new RegExp(
      `^${glob
        .split('**')
        .map((part) =>
          part
            .replace(/[.+^${}()|[\]\\]/g, '\\$&')
            .replace(/\*/g, '[^/]*')
            .replace(/\?/g, '[^/]'),
        )
        .join('.*')}$`,
    );
  const parts = path.posix.normalize(file).replace(/\/$/, '').split('/');
  const candidates = parts.map((_, index) => parts.slice(0, index + 1).join('/'));
  let excluded = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const pattern = path.posix.normalize(negated ? raw.slice(1) : raw).replace(/\/$/, '');
    const regExp = toRegExp(pattern);
    if (candidates.some((candidate) => regExp.test(candidate))) excluded = !negated;
  }
  return excluded;
}

const dockerignore = read('.dockerignore')
  .split(/\r?\n/)
  .map((line) => line.trim())
  .filter((line) => line && !line.startsWith('#'));

describe('Dockerfile', () => {
  const stages = dockerfileStages(read('Dockerfile'));
  const final = stages.at(-1)!;
  const build = stages.find((stage) => stage.name === 'build');
  const runs = (stage: Stage) => stage.instructions.filter((i) => i.op === 'RUN').map((i) => i.args);

  it('is multi-stage: a build stage that builds and prunes dev dependencies, a runtime stage', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(build).toBeDefined();
    const buildRuns = runs(build!).join('\n');
    expect(buildRuns).toMatch(/npm ci\b/);
    expect(buildRuns).toMatch(/npm run build\b/);
    expect(buildRuns).toMatch(/npm prune --omit=dev\b/);
    // The prisma CLI, typescript and effect are devOptional peers of @prisma/client: only
    // --omit=optional removes them.
    expect(buildRuns).toMatch(/npm prune\b.*--omit=optional\b/);
    // The runtime stage installs nothing and compiles nothing.
    expect(runs(final).join('\n')).not.toMatch(/\bnpm\b|\bnpx\b|\btsc\b|\btsx\b/);
  });

  it('runs `node dist/index.js` directly (PID 1 gets SIGTERM) as a non-root user', () => {
    const cmd = final.instructions.filter((i) => i.op === 'CMD').at(-1);
    expect(cmd, 'the runtime stage has a CMD').toBeDefined();
    // Exec form (a JSON array): no shell between the signal and node.
    const argv = JSON.parse(cmd!.args) as string[];
    expect(argv[0]).toBe('node');
    expect(argv).toContain('dist/index.js');
    expect(final.instructions.some((i) => i.op === 'ENTRYPOINT')).toBe(false);
    const user = final.instructions.filter((i) => i.op === 'USER').at(-1)?.args;
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^(root|0)(:|$)/);
  });

  it('seeds no demo data into the database it starts on, unless told to (DEMO_DATA)', () => {
    const env = final.instructions
      .filter((i) => i.op === 'ENV')
      .map((i) => i.args)
      .join(' ');
    expect(env).toMatch(/(^|\s)DEMO_DATA=false(\s|$)/);
  });

  it('ships what the built server reads at run time: package.json, node_modules, dist/, prisma/migrations/', () => {
    const copied = final.instructions
      .filter((i) => i.op === 'COPY')
      .map((i) => copyArgs(i.args))
      .flatMap(({ from, sources }) => sources.map((source) => (from ? `${from}:${source}` : source)))
      .map((source) => source.replace(/\/$/, ''));
    expect(copied).toEqual(
      expect.arrayContaining([
        'build:/app/package.json',
        'build:/app/node_modules',
        'build:/app/dist',
        'prisma/migrations',
        'catalogue/bundled.json',
      ]),
    );
  });

  it('takes every COPY source from the build context: it exists and .dockerignore keeps it', () => {
    const sources = stages
      .flatMap((stage) => stage.instructions)
      .filter((i) => i.op === 'COPY' || i.op === 'ADD')
      .map((i) => copyArgs(i.args))
      .filter(({ from }) => !from)
      .flatMap(({ sources }) => sources);
    expect(sources.length).toBeGreaterThan(5);
    for (const source of sources) {
      expect(existsSync(path.join(ROOT, source)), `${source} exists`).toBe(true);
      expect(excludedByDockerignore(dockerignore, source), `${source} is in the build context`).toBe(false);
    }
    // One file inside each copied directory as well (Docker applies the rules to every file).
    expect(excludedByDockerignore(dockerignore, 'src/index.ts')).toBe(false);
    expect(excludedByDockerignore(dockerignore, 'prisma/migrations/sqlite/0001_init/migration.sql')).toBe(false);
  });

  it('keeps secrets, local state and generated code out of the build context', () => {
    for (const file of [
      '.env',
      'node_modules/x',
      'dist/index.js',
      'data/market.db',
      '.git/HEAD',
      'src/generated/prisma-sqlite/client.ts',
    ]) {
      expect(excludedByDockerignore(dockerignore, file), file).toBe(true);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// docker-compose.yml, nginx and Kubernetes

const compose = parse(read('docker-compose.yml'), { merge: true }) as Yaml;
const apiServices = Object.entries(compose.services as Record<string, Yaml>).filter(([, service]) => service.build);
/** The documents of a Kubernetes manifest, each as plain data. */
function k8sManifest(file: string): Yaml[] {
  return parseAllDocuments(read(file)).map((doc) => {
    if (doc.errors.length) throw new Error(`${file}: ${doc.errors.join('; ')}`);
    return doc.toJS() as Yaml;
  });
}
const envByName = (container: Yaml): Yaml =>
  Object.fromEntries((container.env as Yaml[]).map((entry) => [entry.name, entry]));
const k8sDocs = k8sManifest('deploy/k8s/market-api.yaml');
const deployment = k8sDocs.find((doc) => doc.kind === 'Deployment')!;
const podSpec = deployment.spec.template.spec as Yaml;
const container = podSpec.containers[0] as Yaml;
const k8sEnv = envByName(container);
const migrateJob = k8sManifest('deploy/k8s/migrate-job.yaml').find((doc) => doc.kind === 'Job')!;
const jobPodSpec = migrateJob.spec.template.spec as Yaml;
const jobContainer = jobPodSpec.containers[0] as Yaml;
const jobEnv = envByName(jobContainer);
/** `npm run db:migrate` as the image holds it (no tsx, no sources); the build test below runs it. */
const BUILT_MIGRATE_CLI = 'dist/db/migrate-cli.js';

/** Milliseconds of a compose duration such as `30s` or `1m30s`. */
function durationMs(text: string): number {
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+)(ms|s|m|h)/g)) {
    ms += Number(amount) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h'];
  }
  return ms;
}

describe('installing better-sqlite3', () => {
  it('never fetches its prebuilt binary: prebuild-install, run from its folder, is told to build from source', async () => {
    const { stdout } = await run(process.execPath, [require.resolve('prebuild-install/rc.js')], {
      cwd: path.join(ROOT, 'node_modules', 'better-sqlite3'),
      env: { ...process.env, npm_config_build_from_source: '' },
    });
    expect(JSON.parse(stdout)).toMatchObject({ buildFromSource: true });
  });
});

describe('docker-compose.yml', () => {
  it('has PostgreSQL, Redis and two API instances behind a proxy', () => {
    expect(apiServices.map(([name]) => name)).toHaveLength(2);
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(['postgres', 'redis', 'proxy']));
  });

  it('runs a Redis line that has the fixes for CVE-2025-49844 and its companion Lua CVEs', () => {
    // The first fixed release of each line; a line not named (6.x, 7.0) got none. A tag without the
    // patch number follows the line's latest release.
    const fixedFrom: Record<string, number> = { '7.2': 11, '7.4': 6, '8.0': 4, '8.2': 2 };
    const image = compose.services.redis.image as string;
    const [, major = '0', minor = '0', patch] = /^redis:(\d+)\.(\d+)(?:\.(\d+))?/.exec(image) ?? [];
    const line = `${major}.${minor}`;
    const laterLine = Number(major) > 8 || (Number(major) === 8 && Number(minor) > 2);
    expect(laterLine || line in fixedFrom, image).toBe(true);
    if (patch !== undefined && !laterLine) expect(Number(patch), image).toBeGreaterThanOrEqual(fixedFrom[line]!);
  });

  it('references only services, volumes and files that exist', () => {
    const services = compose.services as Record<string, Yaml>;
    for (const [name, service] of Object.entries(services)) {
      const dependsOn = Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {});
      for (const dependency of dependsOn)
        expect(Object.keys(services), `${name} depends on ${dependency}`).toContain(dependency);
      for (const volume of (service.volumes ?? []) as string[]) {
        const [source = ''] = volume.split(':');
        if (source.startsWith('.') || source.startsWith('/')) {
          expect(existsSync(path.join(ROOT, source)), `${name} mounts ${source}`).toBe(true);
        } else {
          expect(Object.keys(compose.volumes ?? {}), `${name} uses volume ${source}`).toContain(source);
        }
      }
    }
  });

  it('configures the instances for a cluster: all interfaces, authentication, PostgreSQL, Redis', () => {
    for (const [name, service] of apiServices) {
      const env = service.environment as Record<string, string>;
      expect(env.HOST, name).toBe('0.0.0.0');
      expect(env.AUTH_TOKENS, `${name}: AUTH_TOKENS comes from the environment, required`).toMatch(
        /^\$\{AUTH_TOKENS:\?/,
      );
      expect(env.DATABASE_URL, name).toMatch(/^postgresql:\/\/.*@postgres:5432\//);
      expect(env.REDIS_URL, name).toBe('redis://redis:6379');
      // A failed start is a JSON entry only with json set explicitly (src/platform/start-failure.ts).
      expect(env.LOG_FORMAT, `${name}: a log collector parses every line`).toBe('json');
      // The stop budget covers its longest stop: the drain, then twice SHUTDOWN_TIMEOUT_MS + 10 s (build-app.ts).
      expect(durationMs(service.stop_grace_period)).toBeGreaterThanOrEqual(
        3 * Number(env.SHUTDOWN_TIMEOUT_MS) + 10_000,
      );
      const check = (service.healthcheck.test as string[]).join(' ');
      expect(check).toContain(`http://127.0.0.1:${env.PORT}/readiness`);
    }
  });

  it('hands the settings in .env to the instances, and the example names only real settings', () => {
    // Compose reads .env by itself only for the ${…} of the file: without env_file, APP_SERVICE_URL
    // and the rest put there never reached the servers (simulated installs).
    for (const [name, service] of apiServices) {
      expect(service.env_file, name).toEqual([{ path: '.env', required: false }]);
    }
    // Every setting the example names (set or commented out) is the server's, or one of compose's own.
    const composeOnly = ['POSTGRES_PASSWORD', 'PROXY_BIND', 'PROXY_PORT'];
    const named = [...read('deploy/compose.env.example').matchAll(/^(?:# )?([A-Z][A-Z0-9_]*)=/gm)].map(([, n]) => n!);
    expect(named).toEqual(expect.arrayContaining(['APP_SERVICE_URL', 'DEVELOPER_SERVICE_URL_TEMPLATE']));
    for (const name of named) {
      expect([...Object.keys(envSchema.shape), ...composeOnly], `${name} in compose.env.example`).toContain(name);
    }
  });

  it('has the proxy balance the instances on their port, with WebSocket upgrade and SSE unbuffered', () => {
    const nginx = read('deploy/nginx.conf');
    const upstreams = [...nginx.matchAll(/^\s*server\s+([\w.-]+):(\d+)/gm)].map(([, host, port]) => `${host}:${port}`);
    expect(upstreams.sort()).toEqual(
      apiServices.map(([name, service]) => `${name}:${(service.environment as Record<string, string>).PORT}`).sort(),
    );
    expect(nginx).toMatch(/proxy_set_header\s+Upgrade\s+\$http_upgrade;/);
    expect(nginx).toMatch(/proxy_set_header\s+Connection\s+\$connection_upgrade;/);
    expect(nginx).toMatch(/proxy_buffering\s+off;/);
    // The gateway header a client sends never reaches the servers (README "A gateway header under compose").
    expect(nginx).toMatch(/^\s*proxy_set_header\s+X-Bfl-User\s+"";/m);
    expect(nginx).toMatch(/proxy_http_version\s+1\.1;/);
    // An admin's chart upload (MAX_BODY_BYTES + CHART_UPLOAD_MAX_BYTES) passes the proxy.
    const bodyLimit = /client_max_body_size\s+(\d+)m;/.exec(nginx)?.[1];
    const defaults = envSchema.parse({});
    expect(Number(bodyLimit) * 1024 * 1024).toBeGreaterThanOrEqual(
      defaults.MAX_BODY_BYTES + defaults.CHART_UPLOAD_MAX_BYTES,
    );
    // nginx closes an idle upstream connection before the server does, never reuses one it is closing.
    const upstreamIdle = /^\s*keepalive_timeout\s+(\d+)s;/m.exec(/upstream market_api \{[^}]*\}/.exec(nginx)![0]);
    expect(upstreamIdle, 'the upstream block sets keepalive_timeout').not.toBeNull();
    expect(Number(upstreamIdle![1]) * 1000).toBeLessThan(defaults.HTTP_KEEP_ALIVE_TIMEOUT_MS);
    // Every connection is an open file: the worker's limit covers worker_connections, and the
    // container allows it (Docker 25+ starts containers at a soft limit of 1024).
    const connections = Number(/^\s*worker_connections\s+(\d+);/m.exec(nginx)?.[1]);
    const openFiles = Number(/^\s*worker_rlimit_nofile\s+(\d+);/m.exec(nginx)?.[1]);
    expect(openFiles, 'worker_rlimit_nofile').toBeGreaterThanOrEqual(2 * connections);
    const { soft, hard } = compose.services.proxy.ulimits.nofile as { soft: number; hard: number };
    expect(Math.min(soft, hard), 'the proxy container allows worker_rlimit_nofile').toBeGreaterThanOrEqual(openFiles);
    // What is not for clients is not published through it.
    expect(nginx).toMatch(/location = \/metrics \{ return 404; \}/);
    expect(nginx).toMatch(/location = \/events\/app-state \{ return 404; \}/);
    expect((compose.services.proxy.volumes as string[]).some((v) => v.startsWith('./deploy/nginx.conf:'))).toBe(true);
  });

  it('publishes the plain-HTTP proxy on the loopback interface unless PROXY_BIND says otherwise', () => {
    const ports = compose.services.proxy.ports as string[];
    expect(ports).toHaveLength(1);
    expect(ports[0]).toMatch(/^\$\{PROXY_BIND:-127\.0\.0\.1\}:\$\{PROXY_PORT:-8080\}:80$/);
    for (const [name, service] of Object.entries(compose.services as Record<string, Yaml>)) {
      if (name !== 'proxy') expect(service.ports, `${name} publishes no port`).toBeUndefined();
    }
  });
});

describe('Kubernetes manifest', () => {
  const port = (container.ports as Yaml[])[0]!;
  const probePort = (probe: Yaml) => probe.httpGet.port;

  it('probes /health (liveness) and /readiness (readiness) on the container port', () => {
    expect(container.livenessProbe.httpGet.path).toBe('/health');
    expect(container.readinessProbe.httpGet.path).toBe('/readiness');
    for (const probe of [container.livenessProbe, container.readinessProbe]) {
      expect([port.name, port.containerPort]).toContain(probePort(probe));
    }
    expect(String(port.containerPort)).toBe(k8sEnv.PORT.value);
    // The readiness check waits up to READINESS_TIMEOUT_MS for the database: the probe waits longer.
    expect(container.readinessProbe.timeoutSeconds * 1000).toBeGreaterThan(READINESS_TIMEOUT_MS);
  });

  it('holds the liveness probe back with a startup probe on /health while the process loads and binds its port', () => {
    const startup = container.startupProbe as Yaml;
    expect(startup?.httpGet?.path).toBe('/health');
    expect([port.name, port.containerPort]).toContain(probePort(startup));
    // Loading the server took 24-27 s on a contended node with the 250m CPU request: minutes, not seconds.
    expect(startup.periodSeconds * startup.failureThreshold).toBeGreaterThanOrEqual(120);
    const liveness = container.livenessProbe as Yaml;
    expect(liveness.periodSeconds * liveness.failureThreshold).toBeLessThan(
      startup.periodSeconds * startup.failureThreshold,
    );
  });

  it('gives a stop enough time: preStop pause + its longest stop, within the grace period', () => {
    const preStop = container.lifecycle.preStop as Yaml;
    const pauseS = preStop.sleep?.seconds ?? Number((preStop.exec.command as string[]).at(-1));
    expect(preStop.exec?.command?.[0] ?? 'sleep').toBe('sleep');
    expect(pauseS).toBeGreaterThan(0);
    const shutdownMs = Number(k8sEnv.SHUTDOWN_TIMEOUT_MS.value);
    // The drain, then twice SHUTDOWN_TIMEOUT_MS + 10 s at most (build-app.ts).
    expect(podSpec.terminationGracePeriodSeconds * 1000).toBeGreaterThanOrEqual(
      pauseS * 1000 + 3 * shutdownMs + 10_000,
    );
  });

  it('runs as non-root on all interfaces with authentication, PostgreSQL and Redis from a Secret', () => {
    expect(podSpec.securityContext.runAsNonRoot).toBe(true);
    expect(container.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(k8sEnv.HOST.value).toBe('0.0.0.0');
    expect(k8sEnv.LOG_FORMAT?.value, 'a failed start is a JSON entry only with json set').toBe('json');
    for (const name of ['AUTH_TOKENS', 'DATABASE_URL', 'REDIS_URL']) {
      expect(k8sEnv[name]?.valueFrom?.secretKeyRef, name).toBeDefined();
    }
    const secret = parse(read('deploy/k8s/secret.example.yaml')) as Yaml;
    for (const entry of container.env as Yaml[]) {
      const ref = entry.valueFrom?.secretKeyRef;
      if (!ref) continue;
      expect(ref.name).toBe(secret.metadata.name);
      expect(Object.keys(secret.stringData)).toContain(ref.key);
    }
  });

  it('has a Service whose selector and target port reach the Deployment’s pods', () => {
    const service = k8sDocs.find((doc) => doc.kind === 'Service')!;
    expect(service).toBeDefined();
    const labels = deployment.spec.template.metadata.labels as Record<string, string>;
    expect(deployment.spec.selector.matchLabels).toEqual(service.spec.selector);
    for (const [key, value] of Object.entries(service.spec.selector as Record<string, string>))
      expect(labels[key]).toBe(value);
    expect([port.name, port.containerPort]).toContain(service.spec.ports[0].targetPort);
  });
});

describe('Kubernetes migration Job (separate database roles)', () => {
  const secret = parse(read('deploy/k8s/secret.example.yaml')) as Yaml;

  it('runs the built `npm run db:migrate` in the Deployment’s image, never restarting in place', () => {
    expect(migrateJob, 'deploy/k8s/migrate-job.yaml has a Job').toBeDefined();
    expect(jobContainer.image).toBe(container.image);
    expect(jobContainer.command).toEqual(['node', BUILT_MIGRATE_CLI]);
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    expect(scripts['db:migrate']).toBe(`tsx ${BUILT_MIGRATE_CLI.replace(/^dist/, 'src').replace(/\.js$/, '.ts')}`);
    // A failed migration rolled back whole: a new pod retries (backoffLimit), not the same one.
    expect(jobPodSpec.restartPolicy).toBe('Never');
    expect(migrateJob.spec.backoffLimit).toBeGreaterThanOrEqual(0);
  });

  it('migrates as the owner role, from a Secret key no server pod reads, with only the settings it reads', () => {
    const reads = /const \{ ([A-Z_, ]+) \} = process\.env/.exec(read('src/db/migrate-cli.ts'))?.[1]?.split(', ');
    expect(reads).toContain('DATABASE_URL');
    expect(Object.keys(jobEnv).sort()).toEqual([...(reads ?? [])].sort());
    expect(jobEnv.LOG_FORMAT?.value, 'a failed migration is a JSON entry only with json set').toBe('json');
    const ref = jobEnv.DATABASE_URL?.valueFrom?.secretKeyRef as Yaml;
    expect(ref.name).toBe(secret.metadata.name);
    expect(Object.keys(secret.stringData)).toContain(ref.key);
    const serverKeys = (container.env as Yaml[]).map((entry) => entry.valueFrom?.secretKeyRef?.key);
    expect(serverKeys).toContain(k8sEnv.DATABASE_URL?.valueFrom?.secretKeyRef?.key);
    expect(serverKeys, 'the owner URL stays out of the server pods').not.toContain(ref.key);
  });

  it('runs locked down like the server pods', () => {
    expect(jobPodSpec.securityContext).toEqual(podSpec.securityContext);
    expect(jobPodSpec.automountServiceAccountToken).toBe(false);
    expect(jobContainer.securityContext).toEqual(container.securityContext);
  });

  it('is no server: its pod matches neither the Deployment, the Service nor the PodDisruptionBudget', () => {
    const labels = migrateJob.spec.template.metadata.labels as Record<string, string>;
    const selectors = [
      deployment.spec.selector.matchLabels,
      k8sDocs.find((doc) => doc.kind === 'Service')?.spec.selector,
      k8sDocs.find((doc) => doc.kind === 'PodDisruptionBudget')?.spec.selector.matchLabels,
    ] as Record<string, string>[];
    for (const selector of selectors) {
      expect(selector).toBeDefined();
      expect(Object.entries(selector).every(([key, value]) => labels[key] === value)).toBe(false);
    }
  });

  it('is named in the README where the migrations of a deployment are explained', () => {
    const readme = read('README.md');
    const deploymentSection = readme.slice(readme.indexOf('\n## Deployment\n'));
    expect(deploymentSection).toContain('deploy/k8s/migrate-job.yaml');
    expect(readme.slice(readme.indexOf('### PostgreSQL in production'))).toContain('deploy/k8s/migrate-job.yaml');
    expect(readme).not.toContain('There is therefore no init container');
  });
});

describe('variables named by the manifests', () => {
  const configTable = (() => {
    const readme = read('README.md');
    const section = readme.slice(
      readme.indexOf('## Configuration'),
      readme.indexOf('\n## ', readme.indexOf('## Configuration') + 1),
    );
    const names = new Set<string>();
    for (const line of section.split('\n').filter((l) => l.startsWith('| `'))) {
      for (const [, name] of (line.split('|')[1] ?? '').matchAll(/`([A-Z][A-Z0-9_]*)`/g)) names.add(name!);
    }
    return names;
  })();
  const deploymentSection = (() => {
    const readme = read('README.md');
    const start = readme.indexOf('\n## Deployment\n');
    return start < 0 ? '' : readme.slice(start, readme.indexOf('\n## ', start + 1));
  })();
  const manifestVariables = [
    ...new Set([
      ...apiServices.flatMap(([, service]) => Object.keys(service.environment)),
      ...Object.keys(k8sEnv),
      ...Object.keys(jobEnv),
    ]),
  ];

  it('are server settings: in config-env.ts and in the README configuration table', () => {
    expect(manifestVariables.length).toBeGreaterThan(5);
    for (const name of manifestVariables) {
      expect(Object.keys(envSchema.shape), `${name} in src/platform/config-env.ts`).toContain(name);
      expect([...configTable], `${name} in the README configuration table`).toContain(name);
    }
  });

  it('are each explained in the README "Deployment" section, with the probes', () => {
    expect(deploymentSection, 'README has a "## Deployment" section').not.toBe('');
    for (const name of manifestVariables) expect(deploymentSection, name).toContain(`\`${name}\``);
    expect(deploymentSection).toContain('/health');
    expect(deploymentSection).toContain('/readiness');
  });
});

// ---------------------------------------------------------------------------------------------
// Production dependencies and the pre-transpiled build

describe('production dependencies (`npm ci --omit=dev`)', () => {
  it('hold every package src/ imports at run time', () => {
    const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
    const missing: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const file = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(file);
        else if (/\.(ts|mts|js|mjs)$/.test(entry.name)) {
          const text = readFileSync(file, 'utf8');
          const statements = [
            // Static imports and re-exports, type-only ones excepted (they vanish from the output).
            ...[...text.matchAll(/^\s*(?:import|export)\s+(type\s+)?(?:[^;'"]*?\s+from\s+)?['"]([^'"]+)['"]/gms)]
              .filter(([, typeOnly]) => !typeOnly)
              .map(([, , spec]) => spec!),
            ...[...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map(([, spec]) => spec!),
          ];
          for (const spec of statements) {
            if (spec.startsWith('.') || isBuiltin(spec)) continue;
            const name = spec
              .split('/')
              .slice(0, spec.startsWith('@') ? 2 : 1)
              .join('/');
            if (!pkg.dependencies[name]) missing.push(`${path.relative(ROOT, file)}: ${spec}`);
          }
        }
      }
    };
    walk(path.join(ROOT, 'src'));
    expect(missing).toEqual([]);
  });
});

const BUILD_TIMEOUT_MS = 90_000;

describe('the pre-transpiled build, laid out like the image', () => {
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'market-deploy-'));
    for (const file of ['package.json', 'tsconfig.json', 'tsconfig.build.json'])
      cpSync(path.join(ROOT, file), path.join(dir, file));
    cpSync(path.join(ROOT, 'src'), path.join(dir, 'src'), { recursive: true });
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    // `npm run build` as written, except that tsc skips type checking (`npm test` type-checks the
    // same files; checking them again here would double the time of this file).
    const script = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.build!;
    const fast = script.replace('tsc -p tsconfig.build.json', 'tsc -p tsconfig.build.json --noCheck');
    expect(fast, 'the build script runs `tsc -p tsconfig.build.json`').not.toBe(script);
    await run('sh', ['-c', fast], {
      cwd: dir,
      env: { ...process.env, PATH: `${path.join(ROOT, 'node_modules', '.bin')}${path.delimiter}${process.env.PATH}` },
    });
    // What the runtime stage holds: package.json, node_modules, dist/, prisma/migrations/, the bundled
    // catalogue. No sources.
    for (const file of ['src', 'tsconfig.json', 'tsconfig.build.json'])
      rmSync(path.join(dir, file), { recursive: true });
    cpSync(path.join(ROOT, 'prisma', 'migrations'), path.join(dir, 'prisma', 'migrations'), { recursive: true });
    cpSync(path.join(ROOT, 'catalogue', 'bundled.json'), path.join(dir, 'catalogue', 'bundled.json'));
  }, BUILD_TIMEOUT_MS);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const env = (extra: Record<string, string>) => ({
    ...process.env,
    DATABASE_URL: `file:${path.join(dir, 'data', 'market.db')}`,
    LOG_LEVEL: 'info',
    DEMO_DATA: '0',
    AUTH_USER_HEADER: '',
    REDIS_URL: '',
    ...extra,
  });

  it('migrates a fresh database with the built migrate CLI', async () => {
    const { stdout } = await run(process.execPath, [BUILT_MIGRATE_CLI], { cwd: dir, env: env({}) });
    const line = JSON.parse(stdout.trim().split('\n').at(-1)!) as { msg: string; applied: string[] };
    expect(line.msg).toBe('migrations applied');
    const migrations = readdirSync(path.join(ROOT, 'prisma', 'migrations', 'sqlite'), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
    expect(migrations.length).toBeGreaterThan(0);
    expect(line.applied).toEqual(migrations);
  });

  it('starts as `node dist/index.js` on all interfaces with tokens, answers, and stops on SIGTERM', async () => {
    const token = 'deploy-test-token-1234';
    const child: ChildProcess = spawn(process.execPath, ['dist/index.js'], {
      cwd: dir,
      env: env({ HOST: '0.0.0.0', PORT: '0', AUTH_TOKENS: `ops:admin:${token}` }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    try {
      const listening = new Promise<string>((resolve, reject) => {
        for (const stream of [child.stdout!, child.stderr!]) {
          createInterface({ input: stream }).on('line', (line) => {
            output.push(line);
            const url = /"url":"(http:\/\/[^"]+)\/graphql".*API listening/.exec(line)?.[1];
            if (url) resolve(url.replace('0.0.0.0', '127.0.0.1'));
          });
        }
        void exited.then(([code]) => reject(new Error(`server exited (${code}):\n${output.join('\n')}`)));
      });
      const base = await listening;
      expect((await fetch(`${base}/health`)).status).toBe(200);
      expect((await fetch(`${base}/readiness`)).status).toBe(200);
      // The dashboard's files are assets next to the code: the build copies them.
      expect((await fetch(`${base}/dashboard`)).status).toBe(200);
      const query = (headers: Record<string, string>) =>
        fetch(`${base}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ query: '{ viewer { userId } }' }),
        });
      expect((await query({})).status).toBe(401);
      const answer = await query({ authorization: `Bearer ${token}` });
      expect(await answer.json()).toEqual({ data: { viewer: { userId: 'ops' } } });
      // Without MARKET_SOURCE_URL, market.olares reads the bundled catalogue, shipped with the image.
      const bundled = JSON.parse(read('catalogue/bundled.json')) as { data: { apps: Record<string, unknown> } };
      await waitFor(async () => {
        const response = await fetch(`${base}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ query: '{ catalog(first: 1) { totalCount } }' }),
        });
        const body = (await response.json()) as { data?: { catalog: { totalCount: number } } };
        return body.data?.catalog.totalCount === Object.keys(bundled.data.apps).length ? true : undefined;
      }, 'the bundled catalogue');
      child.kill('SIGTERM');
      const [code] = await exited;
      expect(code, output.join('\n')).toBe(0);
      expect(output.some((line) => line.includes('"msg":"stopped"'))).toBe(true);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 30_000);
});
