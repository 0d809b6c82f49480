// Where fp4kit's queue lives in a Redis database: the queue's name (one per fp4kit version, so
// producers and workers of two versions on one database ignore each other), the key prefix
// (--prefix, BullMQ's `prefix`: independent deployments share a database), and the check that no
// one else's key sits under those names. BullMQ meets such a key only as WRONGTYPE replies, which
// it repeats thousands of times a second (or, for the keys it SETs or DELs without reading them,
// it overwrites the key). So the keys are checked before any BullMQ object is made, and a
// WRONGTYPE reply later is traced to its key. Types only here (no ioredis or BullMQ at load): the
// CLI checks --prefix without loading them.
import type { Redis } from 'ioredis';

/** BullMQ's default key prefix (the one BullMQ's tools look under). */
export const DEFAULT_PREFIX = 'bull';

/** The queue every fp4kit version used before each had its own (workers of those builds still listen there). */
const SHARED_QUEUE_BEFORE_VERSIONS = 'fp4kit-checkpoint';

/** The BullMQ queue of one fp4kit version: its producer enqueues there and its workers take only from there. */
export function queueNameOf(version: string): string {
  return `fp4kit-checkpoint@${version}`;
}

/** The fp4kit version a queue name of queueNameOf() is for, or null for any other name. */
export function versionOfQueue(name: string): string | null {
  const head = queueNameOf('');
  return name.startsWith(head) && name.length > head.length ? name.slice(head.length) : null;
}

/** --prefix as given, checked: letters, digits and `._:{}-` (no glob or space characters: the
 *  prefix goes into SCAN patterns and client names), 1..64 of them. */
export function checkPrefix(prefix: string): string {
  if (!/^[A-Za-z0-9._:{}-]{1,64}$/.test(prefix)) {
    throw new RangeError(`--prefix: expected 1 to 64 letters, digits or ._:{}- (a Redis key prefix such as fp4kit-team-a), got ${JSON.stringify(prefix)}`);
  }
  return prefix;
}

/** Where a queue is: the Redis URL (as logs show it), the key prefix and the queue's name. */
export interface QueuePlace {
  shownUrl: string;
  prefix: string;
  name: string;
}

/** The keys of a BullMQ queue with a fixed name (bullmq's QueueKeys) and the Redis type BullMQ keeps in each. */
const FIXED_KEYS: Readonly<Record<string, string>> = {
  active: 'list', wait: 'list', paused: 'list',
  'waiting-children': 'zset', delayed: 'zset', prioritized: 'zset', completed: 'zset', failed: 'zset', repeat: 'zset', marker: 'zset',
  stalled: 'set',
  id: 'string', 'stalled-check': 'string', limiter: 'string', pc: 'string',
  meta: 'hash',
  events: 'stream',
};

/** The type BullMQ keeps under `<prefix>:<queue>:<suffix>` for a job's keys, or null for a suffix it does not use. */
function jobKeyType(suffix: string): string | null {
  if (suffix in FIXED_KEYS) return FIXED_KEYS[suffix];
  if (/^de:/.test(suffix)) return 'string'; // a deduplication key
  if (/^repeat:/.test(suffix)) return 'hash'; // a job scheduler
  const sub = /^[^:]+(?::(lock|logs|processed|failed|unsuccessful|dependencies))?$/.exec(suffix);
  if (sub === null) return null;
  return ({ lock: 'string', logs: 'list', processed: 'hash', failed: 'hash', unsuccessful: 'zset', dependencies: 'set' } as Record<string, string>)[sub[1] ?? ''] ?? 'hash';
}

/** Someone else's key under the queue's names: fp4kit stops rather than let BullMQ use it. */
export class ForeignKeyError extends Error {
  constructor(place: QueuePlace, problem: string) {
    const otherDb = /\/\d+$/.test(place.shownUrl) ? 'another database number' : `another database (${place.shownUrl}/1)`;
    const prefix = place.prefix === 'fp4kit' ? 'fp4kit-2' : 'fp4kit'; // one it does not use yet
    super(`Redis at ${place.shownUrl} ${problem}. Give fp4kit a key prefix of its own (--prefix ${prefix}, on the producer and every worker) or ${otherDb}`);
    this.name = 'ForeignKeyError';
  }
}

const foreignKey = (place: QueuePlace, key: string, what: string) =>
  new ForeignKeyError(place, `holds ${key}, ${what}: not a key of fp4kit's queue (someone else's data under its names), and fp4kit leaves it alone`);

/** Whether an error is Redis's WRONGTYPE reply (from a command, or from a BullMQ script). */
export function isWrongType(err: unknown): boolean {
  return err instanceof Error && /\bWRONGTYPE\b/.test(err.message);
}

const INTEGER = /^-?\d{1,20}$/;

/**
 * The first key under the queue's names that BullMQ would trip over or overwrite: a type other
 * than BullMQ's, a string that is not a counter or timestamp, a `meta` hash BullMQ did not write,
 * an `events` stream of other entries. Only reads. The fixed names are a few commands; with
 * `jobKeys` every key under `<prefix>:<queue>:` is looked at too (a SCAN of the whole database:
 * for tracing a WRONGTYPE reply, not for every start).
 */
export async function findForeignKey(redis: Redis, place: QueuePlace, jobKeys = false): Promise<ForeignKeyError | null> {
  const base = `${place.prefix}:${place.name}:`;
  const check = async (key: string, expected: string): Promise<ForeignKeyError | null> => {
    const type = await redis.type(key);
    if (type === 'none') return null;
    if (type !== expected) return foreignKey(place, key, `a ${type}, where BullMQ keeps a ${expected}`);
    const suffix = key.slice(base.length);
    if (type === 'string' && suffix in FIXED_KEYS) {
      // A counter or timestamp: read only if short (a foreign string may be large).
      const value = (await redis.strlen(key)) <= 20 ? await redis.get(key) : null;
      if (value === null || !INTEGER.test(value)) return foreignKey(place, key, 'a string that is not a number, where BullMQ keeps a counter or timestamp');
    }
    if (suffix === 'meta') {
      const version = await redis.hget(key, 'version');
      if (version !== null && !version.startsWith('bullmq:')) return foreignKey(place, key, `a hash whose version is ${JSON.stringify(version.slice(0, 40))}, not BullMQ's`);
      if (version === null && (await redis.hlen(key)) > 0 && (await redis.hexists(key, 'opts.maxLenEvents')) === 0) {
        return foreignKey(place, key, 'a hash of fields BullMQ does not write');
      }
    }
    if (suffix === 'events') {
      const last = (await redis.xrevrange(key, '+', '-', 'COUNT', 1))[0];
      if (last !== undefined && last[1][0] !== 'event') return foreignKey(place, key, 'a stream of entries that are not BullMQ events');
    }
    return null;
  };
  for (const [suffix, type] of Object.entries(FIXED_KEYS)) {
    const found = await check(base + suffix, type);
    if (found) return found;
  }
  if (!jobKeys) return null;
  const pattern = `${base.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const expected = jobKeyType(key.slice(base.length));
      if (expected === null || key.slice(base.length) in FIXED_KEYS) continue;
      const found = await check(key, expected);
      if (found) return found;
    }
  } while (cursor !== '0');
  return null;
}

/** What a WRONGTYPE reply is said as: the key behind it, or, when none is found any more, the reply itself. */
export async function explainWrongType(redis: Redis, place: QueuePlace, err: Error): Promise<ForeignKeyError> {
  const found = await findForeignKey(redis, place, true).catch(() => null);
  return found ?? new ForeignKeyError(
    place,
    `answered WRONGTYPE for a key under ${place.prefix}:${place.name}: (${err.message.split('\n')[0]}), though no key found there now is someone else's: something else writes under fp4kit's queue names`,
  );
}

/**
 * The fp4kit versions of the workers connected under `prefix` other than `mine` (BullMQ names a
 * worker's connection `<prefix>:<base64 of its queue>:w:<worker name>`), for the producer's
 * no-worker notice. Empty when Redis refuses CLIENT LIST (some managed ones do).
 */
export async function otherVersionWorkers(redis: Redis, prefix: string, mine: string): Promise<string[]> {
  const list = await (redis.client('LIST') as Promise<string>).catch(() => '');
  const versions = new Set<string>();
  for (const m of list.matchAll(/\bname=(\S+)/g)) {
    const name = m[1];
    if (!name.startsWith(`${prefix}:`)) continue;
    const rest = name.slice(prefix.length + 1).split(':');
    if (rest[1] !== 'w') continue;
    const queue = Buffer.from(rest[0], 'base64').toString('utf8');
    // Workers of builds before the queue per version listen on the one queue all versions shared.
    if (queue === SHARED_QUEUE_BEFORE_VERSIONS) versions.add(`before 2026-12-07 (on the shared queue ${SHARED_QUEUE_BEFORE_VERSIONS}: upgrade them)`);
    const version = versionOfQueue(queue);
    if (version !== null && version !== mine) versions.add(version);
  }
  return [...versions].sort();
}
