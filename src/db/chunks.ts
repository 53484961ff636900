/**
 * Bound parameters per statement. Through Prisma's query API (`findMany` with an `OR` of keys),
 * Prisma refuses a statement of more than 999 on SQLite (P2029: "query parameter limit exceeded");
 * a raw statement on the driver may carry 32,766 on SQLite and 65,535 on PostgreSQL, whose protocol
 * counts them in 16 bits (70,010 went out as 4,474 and failed). Lists of keys as long as a store
 * (a runtime snapshot of 70,000 apps asking for each app's tasks) are read in chunks within these.
 */
export const PRISMA_PARAMETERS = 999;
export const RAW_PARAMETERS = 30_000;
/**
 * App keys (three parameters each) per statement that ORs them: within Prisma's 999, and within
 * SQLite's deepest expression (1,000), which a chain of ORs nests one level per key.
 */
export const KEYS_PER_OR = 300;

export function chunks<T>(items: readonly T[], size: number): T[][] {
  const result: T[][] = [];
  for (let start = 0; start < items.length; start += size) result.push(items.slice(start, start + size));
  return result;
}

/** `read` over `items` in chunks of at most `size`, one after the other; the rows of all, in order. */
export async function readInChunks<T, Row>(
  items: readonly T[],
  size: number,
  read: (chunk: readonly T[]) => Promise<Row[]>,
): Promise<Row[]> {
  if (items.length <= size) return read(items);
  const rows: Row[] = [];
  for (const chunk of chunks(items, size)) rows.push(...(await read(chunk)));
  return rows;
}
