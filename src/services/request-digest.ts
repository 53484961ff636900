import { createHash } from 'node:crypto';
import type { TaskType } from '../domain/tasks.js';

/** JSON with object keys sorted and null or absent fields left out: one text for one request, however it was sent. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value !== 'object' || value === null) return JSON.stringify(value);
  const fields = Object.entries(value)
    .filter(([, field]) => field !== null && field !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : 1));
  return `{${fields.map(([name, field]) => `${JSON.stringify(name)}:${canonicalJson(field)}`).join(',')}}`;
}

/**
 * What an idempotencyKey is bound to: the SHA-256 of the whole validated request (its type and
 * every input field but the key), stored on the task. `input` is the parsed input, the request as
 * the operation uses it (defaults applied, envs and entrances ordered by name): a retry that
 * spells out a default or lists the envs in another order is the same request, not another one. The task's own columns cannot tell two
 * requests apart (envs, uninstall options and a clone's entrances are in its metadata, secrets
 * redacted), and a key reused with another version or envs answered the original task as a
 * success: the client believed its second request was the one running. Null without a key.
 */
export function requestDigest(type: TaskType, input: { idempotencyKey?: string | null | undefined }): string | null {
  const { idempotencyKey, ...request } = input;
  if (!idempotencyKey) return null;
  return createHash('sha256')
    .update(canonicalJson({ type, ...request }))
    .digest('hex');
}
