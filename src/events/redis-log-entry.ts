/**
 * What an entry of the cluster's change log is (redis-change-log.ts): the script that appends it
 * with its range of sequences, an entry waiting to be appended, and how an entry's id gives its
 * last sequence.
 */

/**
 * Appends one entry with its range of sequences: KEYS = stream, counter, the origin's last append
 * number; ARGV = retention, origin, how many sequences to reserve, the field and value of the
 * body, the origin's own number for a runtime change (see RedisChangeLog.ownChanges), and the
 * entry's append number (0: none).
 *
 * The counter never falls behind Redis's own clock in microseconds (TIME), so a counter lost with
 * Redis's data restarts above every sequence handed out before. Redis's clock, not the appending
 * instance's: an instance whose clock ran 45 s ahead pushed the counter 45 s ahead of real time,
 * and once Redis lost its data the next entries got lower ids than every reader had seen, which
 * they all skipped, their own included (runtime state frozen, silently, for as long as the lead).
 *
 * An origin numbers its entries in the order it appends them, and the script appends an entry
 * only if its number is above the last one appended: a pipeline sent again after a timeout (Redis
 * ran it, the answer was lost) appends nothing twice. A second copy of an older change, appended
 * after a newer one, would be applied last by every instance, leaving them all on the older state.
 * The number is kept a day after the origin's last append, far beyond any retry.
 * Returns the range's last sequence, or nil for an entry appended already. (`%.0f`: Lua's default
 * number format would print 1.7e+15.)
 */
export const APPEND_SCRIPT = `
local appendNumber = tonumber(ARGV[7])
if appendNumber > 0 then
  local appended = redis.call('GET', KEYS[3])
  if appended and tonumber(appended) >= appendNumber then return false end
  redis.call('SET', KEYS[3], ARGV[7], 'EX', 86400)
end
local count = tonumber(ARGV[3])
local last = redis.call('INCRBY', KEYS[2], count)
local time = redis.call('TIME')
local clock = tonumber(time[1]) * 1000000 + tonumber(time[2]) + count
if last < clock then
  last = clock
  redis.call('SET', KEYS[2], string.format('%.0f', last))
end
local id = '0-' .. string.format('%.0f', last)
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], id, 'origin', ARGV[2], 'count', ARGV[3], 'local', ARGV[6], ARGV[4], ARGV[5])
return string.format('%.0f', last)
`;

/** An entry waiting to be appended: its body field and value, and the sequences it needs. */
export interface Pending {
  field: 'changes' | 'runtime' | 'resync';
  /** A runtime change's value is V8's serialization as it is (Redis is binary-safe: no base64). */
  value: string | Buffer;
  reserve: number;
  /** A runtime change's key in ownChanges; 0 for the others. */
  local: number;
  /** The entry's number in the origin's appends (see APPEND_SCRIPT); 0 for a resync entry, which may repeat. */
  appendNumber: number;
}

/** The last sequence of an entry, from its id `0-<last>`. */
export function lastOf(id: string): number {
  return Number(id.slice(id.indexOf('-') + 1));
}

/** The pipeline method defineCommand adds (ioredis types it only on the client). */
export interface AppendPipeline {
  appendChange(...args: (string | number | Buffer)[]): unknown;
}
