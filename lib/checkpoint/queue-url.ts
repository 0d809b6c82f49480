// The Redis URL of a queued run (--queue redis://[user:password@]host:port[/db]): its ioredis
// options, how logs show it, and the producer's "nothing was queued" error. Apart from queue.ts
// (BullMQ, ~0.2 s to load) so the CLI checks its flags and runs every other command without it.
import type { RedisOptions } from 'bullmq';

/** ioredis options from a redis:// or rediss:// URL (redis://[user:password@]host:port[/db]). */
export function redisOptions(url: string): RedisOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RangeError(`--queue: expected a Redis URL such as redis://host:6379, got ${JSON.stringify(shownUrl(url))}`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new RangeError(`--queue: expected a redis:// or rediss:// URL, got ${JSON.stringify(shownUrl(url))}`);
  if (u.hostname === '') throw new RangeError(`--queue: the URL names no host: ${JSON.stringify(shownUrl(url))}`);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new RangeError(`--queue: the database number must be an integer, got ${JSON.stringify(u.pathname.slice(1))}`);
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port === '' ? 6379 : Number(u.port),
    db,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    // BullMQ's blocking commands must wait as long as it takes, not fail after a few retries.
    maxRetriesPerRequest: null,
  };
}

/** A Redis URL as logs show it: the password (redis://:secret@host) as ***. Worker logs end up in
 *  log aggregation, and the URL form with a password is the one the docs give. */
export function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password === '') return url;
    u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/(\/\/[^/@:]*:)[^@/]*@/, '$1***@'); // not a URL: a user:password@ part all the same
  }
}

/** A producer stopped before it enqueued its run: no job of it is in the queue (the run folder
 *  it made is removed; one an earlier producer of the same run made stays, with its plan). */
export class NotQueuedError extends Error {
  constructor() {
    super('interrupted while planning; nothing was queued');
    this.name = 'NotQueuedError';
  }
}
