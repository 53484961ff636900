/**
 * Where the CPU time of a V8 profile goes: `npx tsx bench/lib/profile-summary.ts <file.cpuprofile> [top]`
 * (profiles from `npx tsx bench/run.ts --cpu-prof <dir>`). Prints self time by package or
 * project file, by the innermost project frame on the stack (async continuations inside Prisma
 * often have none), and the hottest functions.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Package (node_modules/<pkg>), project file, node internal, or VM pseudo-frame. */
export function bucketOf(frame: ProfileNode['callFrame']): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith('(') ? functionName : `(native) ${functionName || 'anonymous'}`;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const file = url.startsWith('file://') ? fileURLToPath(url) : url;
  const modules = file.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const parts = file.slice(modules + '/node_modules/'.length).split('/');
    return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? file);
  }
  const relative = path.relative(ROOT, file);
  if (relative.startsWith('src/generated/')) return 'src/generated (Prisma client)';
  return relative.startsWith('..') ? file : relative;
}

function isProjectFrame(frame: ProfileNode['callFrame']): boolean {
  const bucket = bucketOf(frame);
  return (bucket.startsWith('src/') && !bucket.startsWith('src/generated')) || bucket.startsWith('bench/');
}

export function summarise(profile: Profile, top = 25): string {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const selfMicros = new Map<number, number>();
  for (const [index, id] of profile.samples.entries()) {
    selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0));
  }
  const total = profile.endTime - profile.startTime;
  const byBucket = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const byProjectFrame = new Map<string, number>();
  let busy = 0;
  for (const [id, micros] of selfMicros) {
    const node = byId.get(id);
    if (!node) continue;
    const bucket = bucketOf(node.callFrame);
    if (bucket !== '(idle)') busy += micros;
    byBucket.set(bucket, (byBucket.get(bucket) ?? 0) + micros);
    const fn = `${node.callFrame.functionName || 'anonymous'} [${bucket}${node.callFrame.url ? `:${node.callFrame.lineNumber + 1}` : ''}]`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + micros);
    if (bucket === '(idle)') continue;
    // The innermost project frame on the stack: which part of our code this time serves.
    let owner = '(no project frame on the stack: async continuation, timer or I/O callback)';
    if (['(garbage collector)', '(program)'].includes(bucket)) owner = bucket;
    for (let cursor: number | undefined = id; cursor !== undefined; cursor = parent.get(cursor)) {
      const frame = byId.get(cursor)?.callFrame;
      if (frame && isProjectFrame(frame)) {
        owner = `${bucketOf(frame)} ${frame.functionName || 'anonymous'}`;
        break;
      }
    }
    byProjectFrame.set(owner, (byProjectFrame.get(owner) ?? 0) + micros);
  }
  const lines: string[] = [];
  const ms = (micros: number) => `${(micros / 1000).toFixed(0)} ms`;
  const pct = (micros: number) => `${((micros / busy) * 100).toFixed(1)}%`;
  const table = (title: string, map: Map<string, number>, limit: number) => {
    lines.push('', title);
    const entries = [...map].filter(([key]) => key !== '(idle)').sort((a, b) => b[1] - a[1]);
    for (const [key, micros] of entries.slice(0, limit)) {
      lines.push(`  ${pct(micros).padStart(6)}  ${ms(micros).padStart(9)}  ${key}`);
    }
  };
  lines.push(
    `profile: ${ms(total)} wall, ${ms(busy)} busy (${((busy / total) * 100).toFixed(0)}%), ${ms(byBucket.get('(idle)') ?? 0)} idle; percentages are of busy time`,
  );
  table('self time by package / project file:', byBucket, top);
  table('self time by innermost project frame on the stack:', byProjectFrame, top);
  table('hottest functions (self time):', byFunction, top);
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: npx tsx bench/lib/profile-summary.ts <file.cpuprofile> [top]');
    process.exitCode = 2;
  } else {
    console.log(summarise(JSON.parse(readFileSync(file, 'utf8')) as Profile, Number(process.argv[3] ?? 25)));
  }
}
