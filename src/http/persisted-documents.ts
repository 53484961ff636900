import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type DocumentNode, GraphQLError, Kind, parse } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { excerpt } from '../domain/text-length.js';
import { type ConfigError, invalidSetting } from '../platform/config.js';

/**
 * Persisted documents (PERSISTED_DOCUMENTS): only the operations of a manifest run. The manifest
 * is the `persisted-documents.json` GraphQL Code Generator's client preset writes
 * (`presetConfig.persistedDocuments`): `{ "sha256:<hex>": "<document>" }`, the hash taken over the
 * document as the preset normalises it (selections sorted, whitespace collapsed).
 *
 * A request names its document in one of two ways:
 * - by id: `documentId` (GraphQL over HTTP's persisted documents) or APQ's
 *   `extensions.persistedQuery.sha256Hash` (with or without the `sha256:` prefix), with no
 *   `query` (graphql-ws, which requires one, sends `query: ""`);
 * - by text: a `query` that is a manifest document, each run of whitespace counting as one space
 *   (not token by token: that would mean lexing every unknown text). The text is looked up
 *   before anything parses it, so an unknown document costs a string lookup, never a parse; and
 *   what runs is always the manifest's own parsed document, never the client's text.
 * A request with both runs its text (the id is ignored), as it would without a manifest.
 *
 * Everything else is refused: PERSISTED_QUERY_NOT_FOUND for an unknown id,
 * PERSISTED_DOCUMENT_REQUIRED for any other document.
 *
 * Without a manifest, a request that names its document only by id is refused with
 * PERSISTED_QUERY_NOT_SUPPORTED (HTTP 400; the code Apollo's APQ link reads as "send the text
 * from now on"), on every transport; one with a `query` runs its text, the id ignored.
 *
 * How the transports share this: the id is turned into a placeholder text (`documentSource`,
 * which both the Yoga plugin's `onParams` and the streaming transports call, through
 * `graphQLRequest` in transports/graphql-operation.ts), and the Yoga plugin's `onParse` hook, which
 * runs in Yoga's envelop pipeline on every transport (HTTP, graphql-ws, SSE), resolves that text
 * to a manifest document or refuses it. The placeholder is unique per id because Yoga caches
 * parsed documents by their text.
 */

/** Where a placeholder starts: a GraphQL comment, so it can never be taken for a real document. */
const PLACEHOLDER = '# persisted document ';

/** GraphQL Code Generator's own last normalisation step (`normalizeWhiteSpace`). */
function collapseWhitespace(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** The id a request names its document by: `documentId`, or APQ's `extensions.persistedQuery.sha256Hash`. */
export function persistedDocumentId(params: { documentId?: unknown; extensions?: unknown }): string | undefined {
  if (typeof params.documentId === 'string' && params.documentId) return params.documentId;
  let extensions = params.extensions;
  if (typeof extensions === 'string') {
    // A GET request's query string carries `extensions` as JSON text.
    try {
      extensions = JSON.parse(extensions);
    } catch {
      return undefined;
    }
  }
  const hash =
    typeof extensions === 'object'
      ? (extensions as { persistedQuery?: { sha256Hash?: unknown } } | null)?.persistedQuery?.sha256Hash
      : undefined;
  return typeof hash === 'string' && hash ? hash : undefined;
}

/**
 * The text a request's document is parsed from: its `query`; or, when that is empty and the
 * request names a persisted document by id, a placeholder the `onParse` hook resolves.
 * Undefined when the request names no document at all.
 */
export function documentSource(params: {
  query?: unknown;
  documentId?: unknown;
  extensions?: unknown;
}): string | undefined {
  if (typeof params.query === 'string' && params.query) return params.query;
  const id = persistedDocumentId(params);
  // JSON-quoted: an id cannot end the comment and smuggle a document in after it.
  return id === undefined ? undefined : `${PLACEHOLDER}${JSON.stringify(id)}`;
}

/** A loaded manifest: its documents by id and by (whitespace-collapsed) text, parsed once. */
export class PersistedDocuments {
  private readonly byId = new Map<string, DocumentNode>();
  private readonly byText = new Map<string, DocumentNode>();

  private constructor(manifest: Record<string, string>, path: string) {
    for (const [id, text] of Object.entries(manifest)) {
      const invalid = (reason: string) => invalidManifest(path, `the document ${id} ${reason}`);
      if (id.startsWith('sha256:')) {
        const digest = createHash('sha256').update(text).digest('hex');
        // A client hashed the document it means: running a different text under that id would
        // run something it never asked for.
        if (id !== `sha256:${digest}`) throw invalid('is not the one its sha256 names (was the file edited?)');
      }
      let document: DocumentNode;
      try {
        document = parse(text);
      } catch (error) {
        throw invalid(`does not parse: ${(error as Error).message}`);
      }
      if (!document.definitions.some((definition) => definition.kind === Kind.OPERATION_DEFINITION)) {
        throw invalid('has no operation');
      }
      this.byId.set(id, document);
      this.byText.set(collapseWhitespace(text), document);
    }
  }

  /** Reads and checks the manifest; throws a ConfigError naming PERSISTED_DOCUMENTS when it can't be used. */
  static load(path: string): PersistedDocuments {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw invalidManifest(
        path,
        `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      );
    }
    let manifest: unknown;
    try {
      manifest = JSON.parse(text);
    } catch (error) {
      throw invalidManifest(path, `is not JSON (${(error as Error).message})`);
    }
    if (typeof manifest !== 'object' || manifest === null || Array.isArray(manifest)) {
      throw invalidManifest(path, 'must be a JSON object of hash → document, as the codegen client preset writes it');
    }
    const entries = Object.entries(manifest);
    if (!entries.length) throw invalidManifest(path, 'has no documents: every operation would be refused');
    const wrong = entries.find(([, document]) => typeof document !== 'string');
    if (wrong) throw invalidManifest(path, `the value of ${wrong[0]} must be a document (a string)`);
    return new PersistedDocuments(manifest as Record<string, string>, path);
  }

  /** Whether a document sent as this text runs (the way the dashboard's pages send theirs). */
  runsText(text: string): boolean {
    return this.byText.has(collapseWhitespace(text));
  }

  /**
   * The manifest document a parse source stands for (a placeholder's id, or a manifest text);
   * throws the GraphQL error to answer with when there is none.
   */
  resolve(source: string): DocumentNode {
    const id = placeholderId(source);
    if (id !== undefined) {
      // APQ clients send the bare hex digest; the manifest keys carry the algorithm.
      const document = this.byId.get(id) ?? this.byId.get(`sha256:${id}`);
      if (!document) {
        throw refusal(
          'PERSISTED_QUERY_NOT_FOUND',
          `No persisted document has the id ${JSON.stringify(excerpt(id, 100))}: this server runs only the documents of its manifest.`,
        );
      }
      return document;
    }
    const document = this.byText.get(collapseWhitespace(source));
    if (!document) {
      throw refusal(
        'PERSISTED_DOCUMENT_REQUIRED',
        'This server runs only persisted documents: send the id of one (documentId, or extensions.persistedQuery.sha256Hash) instead of a document.',
      );
    }
    return document;
  }
}

function invalidManifest(path: string, reason: string): ConfigError {
  return invalidSetting('PERSISTED_DOCUMENTS', `${path} ${reason}`);
}

/** The id in a placeholder, or undefined when `source` is not one (a client can send anything). */
function placeholderId(source: string): string | undefined {
  if (!source.startsWith(PLACEHOLDER)) return undefined;
  try {
    const id: unknown = JSON.parse(source.slice(PLACEHOLDER.length));
    return typeof id === 'string' ? id : '';
  } catch {
    return '';
  }
}

function refusal(code: string, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code, http: { status: 400 } } });
}

/** What a request naming its document only by id gets from a server without a manifest. */
function notSupported(id: string): GraphQLError {
  const message =
    `This server runs no persisted documents (PERSISTED_DOCUMENTS is not set), so the id ` +
    `${JSON.stringify(excerpt(id, 100))} names nothing: send the document's text as \`query\`.`;
  return refusal('PERSISTED_QUERY_NOT_SUPPORTED', message);
}

/**
 * The Yoga plugin that enforces the manifest, or without one (`null`) refuses ids. `onParams`
 * (HTTP only: Yoga's own request parsing) turns an id into its placeholder, since Yoga wants a
 * `query`; `onParse` (every transport) resolves what is about to be parsed, or refuses it before
 * it is parsed. Without a manifest an id would otherwise be "an unexpected parameter" or "no
 * query string" to Yoga, and a syntax error in its placeholder to graphql-ws and SSE.
 */
export function usePersistedDocuments(documents: PersistedDocuments | null): Plugin {
  return {
    onParams({ params, request, setParams }) {
      const { documentId, ...rest } = params as typeof params & { documentId?: unknown };
      // Not a request for a document at all: Yoga refuses it (400, `"query" param to be a string`).
      if (rest.query != null && typeof rest.query !== 'string') return;
      // Yoga's GET parsing keeps only query, variables, operationName and extensions.
      const id =
        documentId ?? (request.method === 'GET' ? new URL(request.url).searchParams.get('documentId') : undefined);
      const query = documentSource({ ...rest, documentId: id });
      // Left in, `documentId` would be refused as an unknown parameter.
      if (query !== rest.query || documentId !== undefined) setParams({ ...rest, query });
    },
    onParse({ params: { source }, setParsedDocument }) {
      const text = typeof source === 'string' ? source : source.body;
      if (documents) {
        setParsedDocument(documents.resolve(text));
        return;
      }
      const id = placeholderId(text);
      if (id) throw notSupported(id); // any other text parses as it would without this plugin
    },
  };
}
