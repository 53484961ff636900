import pg, { type QueryConfig } from 'pg';

/**
 * How values cross pg for db/driver-sql.ts's hand-written statements, so that rows read and
 * parameters written match what Prisma's adapter reads and writes.
 */

/** timestamp(3) columns hold UTC (Prisma writes them so); pg would read them as local time. */
const PG_TIMESTAMP = 1114;
const PG_INT8 = 20;
export const PG_TYPES: QueryConfig['types'] = {
  getTypeParser: ((oid: number, format?: string) => {
    if (oid === PG_TIMESTAMP) return (text: string) => new Date(`${text.replace(' ', 'T')}Z`);
    if (oid === PG_INT8) return (text: string) => Number(text);
    return pg.types.getTypeParser(oid, format as 'text');
  }) as never,
};

export function postgresValue(value: unknown): unknown {
  // pg writes a Date in local time, and a timestamp column drops the offset: UTC text instead.
  return value instanceof Date ? value.toISOString() : value;
}
