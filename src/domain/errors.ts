import { longerThan } from './text-length.js';

/**
 * Expected failures. Services throw these; the schema turns them into typed mutation results
 * (errors plugin) or into GraphQL errors with `extensions.code` on queries. Anything else that
 * escapes is unexpected and stays masked.
 */
export const ERROR_CODES = [
  'NOT_FOUND',
  'VALIDATION',
  'CONFLICT',
  'FORBIDDEN',
  'UNAUTHENTICATED',
  'INVALID_STATE',
  'UPSTREAM',
  'LIMIT_EXCEEDED',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export abstract class DomainError extends Error {
  abstract readonly code: ErrorCode;
}

export class NotFoundError extends DomainError {
  override name = 'NotFoundError';
  readonly code = 'NOT_FOUND';
}

export interface FieldIssue {
  /** Dotted path of the offending input field, e.g. `input.envs.0.name`. */
  path: string;
  message: string;
}

export class ValidationError extends DomainError {
  override name = 'ValidationError';
  readonly code = 'VALIDATION';
  constructor(
    message: string,
    readonly issues: FieldIssue[] = [],
  ) {
    super(message);
  }
}

/** Refuses a client's text argument longer than `max` characters: VALIDATION, naming the argument. */
export function checkArgumentLength(name: string, value: string | null | undefined, max: number): void {
  if (value && longerThan(value, max)) {
    throw new ValidationError(`Argument "${name}" must be at most ${max} characters`, [
      { path: name, message: `longer than ${max} characters` },
    ]);
  }
}

/**
 * Refuses an argument naming one object (a task, a source, an app) that no object can have: empty
 * or longer than `max`. Left out (null) is not refused. An empty one answered null, as if looked
 * up, and where it was optional (`taskUpdated(taskId: "")`) it meant every object.
 */
export function checkIdArgument(name: string, value: string | null | undefined, max: number): void {
  if (value === '') {
    throw new ValidationError(`Argument "${name}" must not be empty`, [{ path: name, message: 'empty' }]);
  }
  checkArgumentLength(name, value, max);
}

export class ConflictError extends DomainError {
  override name = 'ConflictError';
  readonly code = 'CONFLICT';
}

export class ForbiddenError extends DomainError {
  override name = 'ForbiddenError';
  readonly code = 'FORBIDDEN';
}

export class UnauthenticatedError extends DomainError {
  override name = 'UnauthenticatedError';
  readonly code = 'UNAUTHENTICATED';
}

export class InvalidStateError extends DomainError {
  override name = 'InvalidStateError';
  readonly code = 'INVALID_STATE';
}

/** A per-user bound refused the request; the message names the setting and its figure. */
export class LimitExceededError extends DomainError {
  override name = 'LimitExceededError';
  readonly code = 'LIMIT_EXCEEDED';
}

export class UpstreamError extends DomainError {
  override name = 'UpstreamError';
  readonly code = 'UPSTREAM';
}
