import {
  ConflictError,
  type DomainError,
  ERROR_CODES,
  type FieldIssue,
  ForbiddenError,
  InvalidStateError,
  LimitExceededError,
  NotFoundError,
  UnauthenticatedError,
  UpstreamError,
  ValidationError,
} from '../domain/errors.js';
import { builder } from './builder.js';

const CODE_DESCRIPTIONS: Record<(typeof ERROR_CODES)[number], string> = {
  NOT_FOUND: 'The app, version, task or payment does not exist (or is not yours).',
  VALIDATION: 'The input is malformed; `issues` says which fields.',
  CONFLICT:
    'It clashes with something that exists or runs at the same time: an active task for the same app, a market source of that id, a concurrent selection of the active source.',
  FORBIDDEN: 'You may not act on or read this object.',
  UNAUTHENTICATED: 'No valid credentials were sent.',
  INVALID_STATE: "The operation does not apply in the object's current state.",
  UPSTREAM: 'A service this API depends on failed.',
  LIMIT_EXCEEDED:
    'A bound was reached. In a result: a new task beyond MAX_ACTIVE_TASKS_PER_USER pending or running ones (the message names the figure); submit it again once some have ended. As `extensions.code` of a GraphQL error: an operation over MAX_QUERY_COST, a mutation that selects a once-per-operation field twice, or of more mutations than MUTATION_BURST (HTTP 400: it never runs as sent), or one more than the user may have in flight and waiting (HTTP 429 with `Retry-After`: send it again then).',
};

export const ErrorCodeEnum = builder.enumType('ErrorCode', {
  description: 'Stable machine-readable class of an expected error.',
  values: Object.fromEntries(ERROR_CODES.map((code) => [code, { description: CODE_DESCRIPTIONS[code] }])),
});

export const ErrorInterface = builder.interfaceRef<DomainError>('Error').implement({
  description: 'An expected failure of a mutation, returned as data in its result union.',
  fields: (t) => ({
    message: t.exposeString('message', { description: 'What went wrong, for a person.' }),
    code: t.field({
      type: ErrorCodeEnum,
      description: 'What went wrong, for a program.',
      resolve: (error) => error.code,
    }),
  }),
});

const FieldIssueRef = builder.objectRef<FieldIssue>('FieldIssue').implement({
  description: 'One invalid input field.',
  fields: (t) => ({
    path: t.exposeString('path', { description: 'Dotted path of the field in the input, e.g. `envs.0.name`.' }),
    message: t.exposeString('message', { description: 'What is wrong with it.' }),
  }),
});

function errorType(cls: new (message: string) => DomainError, name: string, description: string) {
  return builder.objectType(cls, {
    name,
    description,
    interfaces: [ErrorInterface],
    isTypeOf: (value) => value instanceof cls,
    fields: () => ({}),
  });
}

errorType(NotFoundError, 'NotFoundError', 'The target does not exist or is not visible to you.');
errorType(ConflictError, 'ConflictError', 'Another active task exists for the same (user, source, app).');
errorType(ForbiddenError, 'ForbiddenError', 'You may not act on this object.');
errorType(InvalidStateError, 'InvalidStateError', 'The operation does not apply in the current state.');
errorType(UpstreamError, 'UpstreamError', 'A dependency (app service, developer service) failed.');
errorType(UnauthenticatedError, 'UnauthenticatedError', 'No valid credentials were sent.');
errorType(
  LimitExceededError,
  'LimitExceededError',
  'You have as many pending and running tasks as one user may (MAX_ACTIVE_TASKS_PER_USER): wait for some to end.',
);
builder.objectType(ValidationError, {
  name: 'ValidationError',
  description: 'The input is malformed.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof ValidationError,
  fields: (t) => ({
    issues: t.field({ type: [FieldIssueRef], description: 'The invalid fields.', resolve: (error) => error.issues }),
  }),
});

/**
 * The errors-plugin options of a mutation `name`: its result is the union `<Name>Result` of
 * `<Name>Success { <dataField> }` and the expected error types (the contract's convention).
 */
export function mutationResult(
  name: string,
  dataField: { name: string; description: string },
  successDescription: string,
  types: readonly (new (message: string) => DomainError)[] = MUTATION_ERRORS,
) {
  const typeName = name.charAt(0).toUpperCase() + name.slice(1);
  return {
    types: [...types],
    union: {
      name: `${typeName}Result`,
      description: `Result of ${name}: the ${dataField.name}, or why it was refused.`,
    },
    result: { name: `${typeName}Success`, description: successDescription },
    dataField,
  };
}

/** The error classes every mutation result union lists (services throw these). */
export const MUTATION_ERRORS = [
  NotFoundError,
  ValidationError,
  ConflictError,
  ForbiddenError,
  InvalidStateError,
  UpstreamError,
];

/** A mutation that submits a task may also meet the per-user bound on active tasks (TaskSubmission). */
export const SUBMISSION_ERRORS = [...MUTATION_ERRORS, LimitExceededError];
