import path from 'node:path';
import { addTypenameSelectionDocumentTransform } from '@graphql-codegen/client-preset';

/**
 * Documents left as written (see below): this repository's tests (by the path from where codegen
 * runs), and the dashboard pages' scripts wherever a frontend's codegen reads them from (a
 * `src/dashboard/*.js` file, in this repository or a copy of its folder).
 */
const asWritten = (location = '') =>
  /^test[\\/]/.test(path.relative(process.cwd(), location)) ||
  /(^|[\\/])src[\\/]dashboard[\\/][^\\/]+\.js$/.test(location);

/**
 * codegen.yml's document transform: every selection set of the generated documents, and so of the
 * persisted-documents manifest, selects `__typename` (but a subscription's root, which must be
 * one field). A normalized client cache (Apollo's InMemoryCache, urql's graphcache) keys objects
 * by `__typename` and `id` and matches fragments on unions and interfaces by it; under
 * PERSISTED_DOCUMENTS a client cannot add it to what it sends (it sends an id), so the manifest
 * must hold it. It is the client preset's addTypenameSelectionDocumentTransform.
 *
 * This repository's tests and dashboard pages keep their documents as written: the tests compare
 * whole answers and select `__typename` where they read it, and the pages send their documents'
 * text, which the server matches with the manifest's (PersistedDocuments.runsText).
 */
export function transform(options) {
  const others = options.documents.filter((file) => !asWritten(file.location));
  return [
    ...addTypenameSelectionDocumentTransform.transform({ ...options, documents: others }),
    ...options.documents.filter((file) => asWritten(file.location)),
  ];
}
