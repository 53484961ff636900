import type { AppRow, CatalogAppRow } from '../db/models.js';
import { entryEntrances } from '../domain/catalogue-views.js';
import { ValidationError } from '../domain/errors.js';

/**
 * A clone's entrance titles name entrances of its app: of its chart (the catalogue entry's) or as
 * the app service reported them for the original. Any other name was sent as it was, and its
 * title shown nowhere. VALIDATION naming each unknown one and the app's entrances otherwise.
 */
export function assertEntrancesOf(
  chart: string,
  entry: CatalogAppRow,
  original: AppRow,
  requested: readonly { name: string }[],
): void {
  const reported = Array.isArray(original.entrances) ? original.entrances : [];
  const known = new Set<string>();
  for (const entrance of [...entryEntrances(entry.entry), ...reported]) {
    const name = (entrance as { name?: unknown } | null)?.name;
    if (typeof name === 'string') known.add(name);
  }
  const issues = requested.flatMap((entrance, index) =>
    known.has(entrance.name)
      ? []
      : [{ path: `entrances.${index}.name`, message: `${entrance.name} is not an entrance of ${chart}` }],
  );
  if (issues.length === 0) return;
  const listed = known.size > 0 ? `its entrances: ${[...known].join(', ')}` : 'it has none known';
  throw new ValidationError(`${issues.map((issue) => issue.message).join('; ')} (${listed})`, issues);
}
