import { execFileSync } from 'node:child_process';
import os from 'node:os';

/** One figure of a benchmark (the subject's or the baseline's), with its unit. */
export interface Figure {
  label: string;
  value: number;
  unit: string;
}

/** What every benchmark returns to run.ts: a ratio against a baseline measured in the same run. */
export interface BenchResult {
  /** File name of its JSON report: bench/results/<name>.json. */
  name: string;
  title: string;
  /** The question it answers, as asked. */
  description: string;
  subject: Figure;
  baseline: Figure;
  /** subject ÷ baseline. */
  ratio: number;
  target: { op: '>=' | '<='; value: number };
  /** The ratio meets the target and nothing went wrong (errors = 0). */
  pass: boolean;
  /** Failed operations (counted, never ignored); any error fails the benchmark. */
  errors: number;
  /** Further figures for the summary table, label → formatted value. */
  metrics: Record<string, string>;
  notes: string[];
  /** Everything measured (repetitions, samples, settings), for the JSON report. */
  details: Record<string, unknown>;
}

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  availableParallelism: number;
  totalMemoryGiB: number;
  platform: string;
  release: string;
  arch: string;
  node: string;
  date: string;
  commit: string | null;
  dirty: boolean | null;
}

function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  const status = git(['status', '--porcelain']);
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    availableParallelism: os.availableParallelism(),
    totalMemoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: os.platform(),
    release: os.release(),
    arch: os.arch(),
    node: process.version,
    date: new Date().toISOString(),
    commit: git(['rev-parse', '--short', 'HEAD']),
    dirty: status === null ? null : status.length > 0,
  };
}

export function meetsTarget(ratio: number, target: BenchResult['target']): boolean {
  return target.op === '>=' ? ratio >= target.value : ratio <= target.value;
}

const fmt = (value: number, digits = 1) =>
  Number.isFinite(value) ? value.toLocaleString('en-US', { maximumFractionDigits: digits }) : 'n/a';

export function formatFigure(figure: Figure): string {
  return `${fmt(figure.value)} ${figure.unit}`;
}

/** The markdown report of a run: one overview table, then each benchmark's figures and notes. */
export function summaryMarkdown(results: BenchResult[], machine: MachineInfo, mode: 'full' | 'quick'): string {
  const lines: string[] = [];
  lines.push(`# Benchmark summary${mode === 'quick' ? ' (quick smoke run)' : ''}`, '');
  lines.push(
    `Ratios against baselines measured in the same run on the same machine (ARCHITECTURE.md §8). Mode: **${mode}**.`,
    '',
  );
  lines.push('| benchmark | subject | baseline | ratio | target | errors | result |');
  lines.push('|---|---|---|---|---|---|---|');
  for (const r of results) {
    lines.push(
      `| ${r.name} | ${formatFigure(r.subject)} | ${formatFigure(r.baseline)} | ${fmt(r.ratio, 3)} | ${r.target.op} ${r.target.value} | ${r.errors} | ${r.pass ? '**pass**' : '**FAIL**'} |`,
    );
  }
  lines.push('', '## Machine', '');
  lines.push('| | |', '|---|---|');
  lines.push(`| CPU | ${machine.cpuModel} |`);
  lines.push(`| cores | ${machine.cores} (available parallelism ${machine.availableParallelism}) |`);
  lines.push(`| memory | ${machine.totalMemoryGiB} GiB |`);
  lines.push(`| OS | ${machine.platform} ${machine.release} ${machine.arch} |`);
  lines.push(`| Node | ${machine.node} |`);
  lines.push(`| date | ${machine.date} |`);
  if (machine.commit) lines.push(`| commit | ${machine.commit}${machine.dirty ? ' (with uncommitted changes)' : ''} |`);
  for (const r of results) {
    lines.push('', `## ${r.name}: ${r.title}`, '', `> ${r.description}`, '');
    lines.push('| | |', '|---|---|');
    lines.push(`| ${r.subject.label} | ${formatFigure(r.subject)} |`);
    lines.push(`| ${r.baseline.label} | ${formatFigure(r.baseline)} |`);
    lines.push(`| ratio (subject ÷ baseline) | ${fmt(r.ratio, 3)} |`);
    lines.push(`| target | ${r.target.op} ${r.target.value} |`);
    lines.push(`| errors | ${r.errors} |`);
    lines.push(`| result | ${r.pass ? 'pass' : 'FAIL'} |`);
    for (const [label, value] of Object.entries(r.metrics)) lines.push(`| ${label} | ${value} |`);
    if (r.notes.length) {
      lines.push('', '### Notes', '');
      for (const note of r.notes) lines.push(`- ${note}`);
    }
  }
  lines.push('');
  return lines.join('\n');
}
