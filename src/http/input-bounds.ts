import {
  type ExecutionArgs,
  type ExecutionResult,
  GraphQLError,
  type GraphQLInputType,
  getNullableType,
  getOperationAST,
  isInputObjectType,
  isInputType,
  isListType,
  Kind,
  typeFromAST,
  type ValidationRule,
  type ValueNode,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { characterCount, excerpt, longerThan } from '../domain/text-length.js';
import { isUploadedFile } from '../domain/uploaded-file.js';
import { malformedMultipart } from './body.js';
import { perOperation } from './per-operation.js';
import { asRequestErrors } from './request-errors.js';
import { validationError } from './validation-error.js';

/**
 * Bounds on what a client may send as input, checked once for every operation on every transport
 * (HTTP, graphql-ws and SSE all run Yoga's envelop pipeline) before any resolver runs:
 *
 * - literal arguments and variable defaults: a validation rule (cached with the document by Yoga);
 * - variables: on execute/subscribe, walking the raw values along their declared types (a variable
 *   the operation does not declare is ignored, as graphql-js does: clients such as Apollo Client's
 *   `fetchMore` send their variables whole to a document that uses some; its bytes were bounded
 *   by MAX_BODY_BYTES, and while it waits for a place by MAX_WAITING_BYTES);
 * - a GET (or form-encoded POST) whose `variables`/`extensions` is not JSON: 400 instead of a
 *   parser crash.
 *
 * Lists (and JSON objects) of more than `maxListLength` entries, strings longer than
 * `maxStringLength` or containing U+0000 or an unpaired surrogate (PostgreSQL cannot store either;
 * SQLite would, so the databases would disagree), and JSON values nested deeper than
 * `maxJsonDepth` are refused with `extensions.code: 'VALIDATION'` naming the input and the bound.
 * Errors graphql-js itself raises while coercing variables (wrong type, unknown enum value, a
 * scalar's parse error) get the same code, instead of being taken for unexpected failures.
 */

/** `config.inputLimits`. */
export interface InputLimits {
  /** Most entries of a list or JSON object (MAX_INPUT_LIST_LENGTH). @default 100 */
  maxListLength: number;
  /** Most characters (code points) of a string, JSON strings and keys included (MAX_INPUT_STRING_LENGTH). @default 16384 */
  maxStringLength: number;
  /** Deepest nesting of arrays and objects in a JSON value (MAX_INPUT_JSON_DEPTH). @default 8 */
  maxJsonDepth: number;
}

/** Where in an input a value sits, built into a string only when something is wrong there. */
interface InputPath {
  readonly prev: InputPath | undefined;
  readonly key: string | number;
}

/**
 * UTF-16 units of one key a path shows. A JSON object's keys are the client's: one of 150,000
 * characters was echoed in full, twice (the message and `issues`), a 300 KB answer.
 */
const MAX_KEY_SHOWN = 64;

/**
 * A key as a path shows it: an excerpt, with an unpaired surrogate written as its escape
 * (`\udfff`): the refusal of one such key quoted it, and so answered with invalid Unicode itself.
 */
function shownKey(key: string): string {
  return excerpt(key, MAX_KEY_SHOWN).replace(LONE_SURROGATES, (half) => `\\u${half.charCodeAt(0).toString(16)}`);
}

function printPath(path: InputPath): string {
  let text = '';
  for (let at: InputPath | undefined = path; at; at = at.prev) {
    const { key } = at;
    if (typeof key === 'number') text = `[${key}]${text}`;
    else text = at.prev ? `.${shownKey(key)}${text}` : `${shownKey(key)}${text}`;
  }
  return text;
}

class BoundExceeded extends Error {
  constructor(
    readonly path: InputPath,
    readonly problem: string,
  ) {
    super(problem);
  }
}

const NUL = '\u0000';

/** In a `u` regex a surrogate pair is one code point: this matches only unpaired halves. */
const LONE_SURROGATE = /\p{Surrogate}/u;
const LONE_SURROGATES = /\p{Surrogate}/gu;

/** The checks themselves, over raw JSON values (variables) and over literals (documents). */
export class InputBounds {
  constructor(readonly limits: InputLimits) {}

  /**
   * An operation's variables with their input types (undefined for a type the schema lacks, which
   * validation has refused), found once per operation: looking the types up on every request took
   * 3.5 µs of the ~150 µs of CPU a G1 `app(sourceId, appName)` request costs (graphql-js's
   * development checks in `typeFromAST` and `isInputType`).
   */
  private readonly declaredVariables = perOperation(({ schema, document, operationName }) =>
    (getOperationAST(document, operationName)?.variableDefinitions ?? []).map((definition) => {
      const type = typeFromAST(schema, definition.type);
      return { definition, name: definition.variable.name.value, type: type && isInputType(type) ? type : undefined };
    }),
  );

  private string(value: string, path: InputPath): void {
    const { maxStringLength } = this.limits;
    if (longerThan(value, maxStringLength)) {
      const length = characterCount(value);
      throw new BoundExceeded(path, `is ${length} characters long; at most ${maxStringLength} are accepted`);
    }
    if (value.includes(NUL)) throw new BoundExceeded(path, 'contains a NUL character (U+0000), which is not accepted');
    if (LONE_SURROGATE.test(value)) {
      throw new BoundExceeded(path, 'contains an unpaired UTF-16 surrogate: it is not valid Unicode text');
    }
  }

  private entries(count: number, path: InputPath, what: string): void {
    if (count > this.limits.maxListLength) {
      throw new BoundExceeded(path, `has ${count} ${what}; at most ${this.limits.maxListLength} are accepted`);
    }
  }

  private depth(level: number, path: InputPath): void {
    if (level > this.limits.maxJsonDepth) {
      throw new BoundExceeded(
        path,
        `is nested more than ${this.limits.maxJsonDepth} levels deep; at most ${this.limits.maxJsonDepth} are accepted`,
      );
    }
  }

  /** A raw value at a position of `type` (or of no known type: any JSON). */
  value(value: unknown, type: GraphQLInputType | undefined, path: InputPath): void {
    // A multipart file: bounded by the body limit and by the service that reads it, not walked as JSON.
    if (value === null || value === undefined || isUploadedFile(value)) return;
    const nullable = type && getNullableType(type);
    if (nullable && isListType(nullable)) {
      if (Array.isArray(value)) {
        this.entries(value.length, path, 'items');
        for (let index = 0; index < value.length; index++) {
          this.value(value[index], nullable.ofType, { prev: path, key: index });
        }
      } else {
        this.value(value, nullable.ofType, path); // coerced as a list of one
      }
    } else if (nullable && isInputObjectType(nullable) && typeof value === 'object' && !Array.isArray(value)) {
      const fields = nullable.getFields();
      const keys = Object.keys(value);
      this.entries(keys.length, path, 'fields');
      for (const key of keys) {
        const at = { prev: path, key };
        // Coercion refuses an unknown field quoting its name whole (thrice), so the name is bounded first, as a JSON key.
        if (!fields[key]) this.string(key, at);
        this.value((value as Record<string, unknown>)[key], fields[key]?.type, at);
      }
    } else {
      // A leaf (scalar, enum), or a value of the wrong shape that coercion will refuse: any JSON.
      this.json(value, path, 1);
    }
  }

  private json(value: unknown, path: InputPath, level: number): void {
    if (typeof value === 'string') {
      this.string(value, path);
    } else if (Array.isArray(value)) {
      this.depth(level, path);
      this.entries(value.length, path, 'items');
      for (let index = 0; index < value.length; index++) this.json(value[index], { prev: path, key: index }, level + 1);
    } else if (typeof value === 'object' && value !== null) {
      this.depth(level, path);
      const keys = Object.keys(value);
      this.entries(keys.length, path, 'fields');
      for (const key of keys) {
        const at = { prev: path, key };
        this.string(key, at);
        this.json((value as Record<string, unknown>)[key], at, level + 1);
      }
    }
  }

  /** A literal at a position of `type`; variables inside it are checked with the variables. */
  literal(node: ValueNode, type: GraphQLInputType | undefined, path: InputPath): void {
    const nullable = type && getNullableType(type);
    if (nullable && isListType(nullable)) {
      if (node.kind === Kind.LIST) {
        this.entries(node.values.length, path, 'items');
        for (const [index, item] of node.values.entries()) {
          this.literal(item, nullable.ofType, { prev: path, key: index });
        }
      } else {
        this.literal(node, nullable.ofType, path);
      }
    } else if (nullable && isInputObjectType(nullable) && node.kind === Kind.OBJECT) {
      const fields = nullable.getFields();
      this.entries(node.fields.length, path, 'fields');
      for (const field of node.fields) {
        this.literal(field.value, fields[field.name.value]?.type, { prev: path, key: field.name.value });
      }
    } else {
      this.jsonLiteral(node, path, 1);
    }
  }

  private jsonLiteral(node: ValueNode, path: InputPath, level: number): void {
    if (node.kind === Kind.STRING) {
      this.string(node.value, path);
    } else if (node.kind === Kind.LIST) {
      this.depth(level, path);
      this.entries(node.values.length, path, 'items');
      for (const [index, item] of node.values.entries()) this.jsonLiteral(item, { prev: path, key: index }, level + 1);
    } else if (node.kind === Kind.OBJECT) {
      this.depth(level, path);
      this.entries(node.fields.length, path, 'fields');
      for (const field of node.fields) this.jsonLiteral(field.value, { prev: path, key: field.name.value }, level + 1);
    }
  }

  /** The first bound the operation's variables exceed, as the error to answer with; else null. */
  checkVariables(args: Pick<ExecutionArgs, 'schema' | 'document' | 'operationName' | 'variableValues'>) {
    const variables = args.variableValues;
    if (!variables) return null;
    for (const { definition, name, type } of this.declaredVariables(args)) {
      try {
        this.value(variables[name], type, { prev: undefined, key: `$${name}` });
      } catch (error) {
        if (!(error instanceof BoundExceeded)) throw error;
        const path = printPath(error.path);
        return validationError(
          `Variable ${path} ${error.problem}.`,
          { path, message: error.problem },
          { nodes: [definition], status: 400 },
        );
      }
    }
    return null;
  }

  /** The validation rule for literal arguments and variable defaults. */
  readonly rule: ValidationRule = (context) => {
    const report = (run: () => void, nodes: GraphQLError['nodes']) => {
      try {
        run();
      } catch (error) {
        if (!(error instanceof BoundExceeded)) throw error;
        const path = printPath(error.path);
        context.reportError(
          validationError(`Argument ${path} ${error.problem}.`, { path, message: error.problem }, { nodes }),
        );
      }
    };
    return {
      Argument: (node) => {
        const argument = context.getArgument();
        const owner = context.getDirective() ? `@${context.getDirective()?.name}` : context.getFieldDef()?.name;
        const root = { prev: undefined, key: `${owner ?? '?'}(${node.name.value})` };
        report(() => this.literal(node.value, argument?.type, root), [node]);
        return false;
      },
      VariableDefinition: (node) => {
        const { defaultValue } = node;
        if (!defaultValue) return false;
        const type = typeFromAST(context.getSchema(), node.type);
        const root = { prev: undefined, key: `$${node.variable.name.value} (default)` };
        report(() => this.literal(defaultValue, type && isInputType(type) ? type : undefined, root), [node]);
        return false;
      },
    };
  };
}

function isResult(value: unknown): value is ExecutionResult {
  return typeof value === 'object' && value !== null && !(Symbol.asyncIterator in value);
}

/** Whether `text` parses as JSON (only called once a parse already failed). */
function isJson(text: string | null): boolean {
  if (!text) return true;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** The envelop/Yoga plugin enforcing `limits` (see InputBounds). */
export function useInputBounds(limits: InputLimits): Plugin {
  const bounds = new InputBounds(limits);
  return {
    onRequestParse({ request, requestParser, setRequestParser }) {
      if (!requestParser || (request.method !== 'GET' && request.method !== 'POST')) return;
      // Yoga's GET and form-encoded parsers JSON.parse `variables` and `extensions` unguarded:
      // the SyntaxError would surface as an internal error (HTTP 500).
      setRequestParser(async (req) => {
        try {
          return await requestParser(req);
        } catch (error) {
          const malformed = malformedMultipart(req, error);
          if (malformed) throw malformed;
          if (!(error instanceof SyntaxError)) throw error;
          const search = new URL(req.url).searchParams;
          const bad =
            req.method === 'GET' ? ['variables', 'extensions'].find((name) => !isJson(search.get(name))) : null;
          const what = bad ? `The "${bad}" parameter` : 'The "variables" or "extensions" parameter';
          throw validationError(
            `${what} is not valid JSON.`,
            { path: bad ?? 'variables', message: 'not valid JSON' },
            { status: 400 },
          );
        }
      });
    },
    onValidate({ addValidationRule, validateFn, setValidationFn }) {
      addValidationRule(bounds.rule);
      // graphql-armor's rules (depth, aliases, directives) throw their GraphQLError instead of
      // reporting it: it would reach the client without a code, with HTTP 200. Returned, it is a
      // validation error like the others (Yoga adds the 400), without the "Syntax Error: " armor
      // puts before every message: the document parsed, it only asks for too much.
      setValidationFn((...args) => {
        try {
          return validateFn(...args);
        } catch (error) {
          if (!(error instanceof GraphQLError) || error.originalError) throw error;
          return [
            new GraphQLError(error.message.replace(/^Syntax Error: /, ''), {
              nodes: error.nodes ?? null,
              source: error.source ?? null,
              positions: error.positions ?? null,
              extensions: { ...error.extensions, code: error.extensions.code ?? 'GRAPHQL_VALIDATION_FAILED' },
            }),
          ];
        }
      });
    },
    onExecute({ args, setResultAndStopExecution }) {
      const refused = bounds.checkVariables(args);
      if (refused) return setResultAndStopExecution({ errors: [refused] });
      return {
        onExecuteDone({ result, setResult }) {
          const rewritten = isResult(result) ? asRequestErrors(result) : null;
          if (rewritten) setResult(rewritten);
        },
      };
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const refused = bounds.checkVariables(args);
      if (refused) return setResultAndStopExecution({ errors: [refused] });
      return {
        onSubscribeResult({ result, setResult }) {
          const rewritten = isResult(result) ? asRequestErrors(result) : null;
          if (rewritten) setResult(rewritten);
        },
      };
    },
  };
}
