import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { clipText } from '../platform/clip-text.js';
import { redactSecrets } from '../platform/redact.js';

/**
 * What the layers a request passes through (router, Yoga, the lean path, the streaming transports)
 * learn about it for its log line (app/request-log.ts), written onto the request itself.
 */
export interface RequestNotes {
  requestId?: string;
  userId?: string;
  operationName?: string;
  /** Why it was refused: the first error of the answer, when the status is 400 or above. */
  refusal?: { code?: string; reason: string };
  /**
   * The refusal was answered with status 200 and is still one: as an event of a stream (an SSE
   * `next`), or as a GraphQL answer with errors and no data to a client that did not ask for
   * application/graphql-response+json (a validation failure, say).
   */
  refusedWith200?: boolean;
}

const REQUEST_ID = /^[\w.-]{1,64}$/;
/** A reason is a sentence, not a document: a longer one is cut. */
const MAX_REASON = 200;

/**
 * The request's id, given once: the caller's `x-request-id` when sane, else a new one. A WebSocket
 * upgrade gets one too (echoed in the 101 or the refusal, and on the connection's log line).
 */
export function requestIdFor(req: IncomingMessage & RequestNotes): string {
  if (req.requestId) return req.requestId;
  const given = req.headers['x-request-id'];
  req.requestId = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
  return req.requestId;
}

/**
 * requestIdFor, for a request whose id is kept as long as its connection lasts (a WebSocket
 * upgrade's, on the connection's log line): in one piece. randomUUID's string is a rope of some
 * 20 pieces, ~480 bytes of heap while it is kept against 56 for the same 36 characters flat, and a
 * server holds one per idle graphql-ws subscription. The request keeps the flat copy too, or its
 * reference would keep the rope. (An HTTP request's id lives as long as the request: not copied.)
 */
export function lastingRequestIdFor(req: IncomingMessage & RequestNotes): string {
  // A string made from bytes is one piece (the id is ASCII: REQUEST_ID, or a UUID).
  req.requestId = Buffer.from(requestIdFor(req), 'latin1').toString('latin1');
  return req.requestId;
}

type ErrorLike = {
  readonly message?: unknown;
  readonly extensions?: Readonly<Record<string, unknown>> | null | undefined;
};

/**
 * Keeps the first error of an answer as the request's refusal (the log shows it when the status is
 * 400 or above, or when `with200`: answered 200 and still a refusal, see RequestNotes). The message
 * may quote what the client sent (a variable's value): bounded, and cleaned of secret-shaped values
 * as the logger cleans error messages.
 */
export function noteRefusal(req: RequestNotes, errors: readonly ErrorLike[] | null | undefined, with200 = false): void {
  const first = errors?.[0];
  if (!first) return;
  if (with200) req.refusedWith200 = true;
  const { message, extensions } = first;
  const code = typeof extensions?.code === 'string' ? extensions.code.slice(0, 64) : undefined;
  const text = typeof message === 'string' ? message : '';
  req.refusal = {
    ...(code ? { code } : {}),
    reason: clipText(redactSecrets(withoutInputValues(text.slice(0, 4 * MAX_REASON))), MAX_REASON),
  };
}

/**
 * graphql-js's reasons for refusing an input value that quote no value, as they follow the value
 * in its message. Others (`Int cannot represent non-integer value: "x"`, `Value "X" does not
 * exist in "E" enum`) hold it, and are left out.
 */
const VALUE_FREE_REASON =
  /; ((?:String|Int|Float|Boolean|ID) cannot represent [a-z -]*value|Field "\w+" (?:of required type "[^"]+" was not provided|is not defined by type "\w+")|Expected type "\w+" to be an object)/;

/**
 * A refusal's message without the input value graphql-js quotes when it cannot coerce one (`Variable
 * "$input" got invalid value ["…"] at "input.envs[0].value"; String cannot represent a non string
 * value: ["…"]`, `Expected value of type "Int!", found "x"; …`, `String cannot represent a non string
 * value: […]`), keeping where and why. The value
 * may be a secret sent in the wrong shape (an env value as a list): the client may see it again,
 * the log may not, and no shape rule can tell it is one. The value can hold any text, so what is
 * kept is found by pattern, never by cutting the message at a separator the value may hold too.
 */
export function withoutInputValues(message: string): string {
  // A literal in the document that a scalar refused: `String cannot represent a non string value: […]`.
  const scalar = /^((?:\w+|Enum "\w+") cannot represent [a-z -]*value): /.exec(message);
  if (scalar) return scalar[1] as string;
  const variable = /^Variable "\$(\w+)" got invalid value /.exec(message);
  const literal = /^Expected value of type "[^"]+", found /.exec(message);
  if (!variable && !literal) return message;
  const path = variable ? new RegExp(` at "${variable[1]}(?:\\.\\w+|\\[\\d+\\])*"(?=; )`).exec(message)?.[0] : '';
  const reason = VALUE_FREE_REASON.exec(message)?.[1];
  const head = (variable ?? literal)?.[0].replace(/,? (?:found )?$/, '');
  return `${head}${path ?? ''}${reason ? `; ${reason}` : ''}`;
}
