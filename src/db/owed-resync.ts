import type { Db } from './client.js';

/**
 * A marker that an instance stopped with cluster changes Redis never took (it was cut off; see
 * RedisChangeLog.stop): the other instances' runtime stores miss them, and nothing else would
 * ever tell them. The next instance to start takes the marker and has every instance re-read its
 * state from the database. Kept as a JobCursor row (the table of small named markers): its
 * position is when the changes were left unsent.
 */
const OWED_RESYNC = 'cluster-log:resync-owed';

export async function recordOwedResync(db: Db, at: Date): Promise<void> {
  await db.jobCursor.upsert({
    where: { name: OWED_RESYNC },
    create: { name: OWED_RESYNC, position: at },
    update: { position: at },
  });
}

/** Takes the marker: true for the one caller that removed it (instances may start together). */
export async function takeOwedResync(db: Db): Promise<boolean> {
  const { count } = await db.jobCursor.deleteMany({ where: { name: OWED_RESYNC } });
  return count > 0;
}
