// The apps and tasks the page holds, as Maps that keep up, change by change, what used to be
// worked out again from all of them at every draw: the users and sources they name (the filter
// menus) and, for the apps, the order they are listed in and which of them pass the filters.
// With 50,000 apps under 50 changes/s, copying, filtering and sorting them all for every draw
// took 83 ms a draw (the main thread was busy 85 % of the time, typing in the search took 1.4 s).

/** One collator for every comparison: `localeCompare` builds one per call. */
export const byKey = new Intl.Collator('en').compare;

/** Where `key` is, or would go, in `keys` (sorted by byKey); among keys the collator deems equal, the identical one. */
function position(keys, key) {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (byKey(keys[middle], key) < 0) low = middle + 1;
    else high = middle;
  }
  let at = low;
  while (at < keys.length && keys[at] !== key && byKey(keys[at], key) === 0) at += 1;
  return keys[at] === key ? at : low;
}

/** Adds `key` to the sorted `keys` unless it is there. */
function insertKey(keys, key) {
  const at = position(keys, key);
  if (keys[at] !== key) keys.splice(at, 0, key);
}

/** Takes `key` out of the sorted `keys` if it is there. */
function removeKey(keys, key) {
  const at = position(keys, key);
  if (keys[at] === key) keys.splice(at, 1);
}

function count(counts, value, by) {
  if (!value) return;
  const n = (counts.get(value) ?? 0) + by;
  if (n > 0) counts.set(value, n);
  else counts.delete(value);
}

/** A Map of rows that have a `userId` and a `sourceId`, counting how many rows name each. */
export class OwnedMap extends Map {
  /** userId → rows naming it. */
  users = new Map();
  /** sourceId → rows naming it. */
  sources = new Map();

  constructor(entries = []) {
    super();
    for (const [key, value] of entries) this.set(key, value);
  }

  #own(row, by) {
    count(this.users, row?.userId, by);
    count(this.sources, row?.sourceId, by);
  }

  set(key, value) {
    this.#own(super.get(key), -1);
    this.#own(value, 1);
    return super.set(key, value);
  }

  delete(key) {
    this.#own(super.get(key), -1);
    return super.delete(key);
  }

  clear() {
    this.users.clear();
    this.sources.clear();
    super.clear();
  }
}

/**
 * The apps by key (state.js appKey), with their keys kept in list order and the keys of those
 * shown (passing the filters) patched per changed app: a draw costs what changed since the last
 * one, not what the page holds. Only new filters go through every app again (without sorting).
 */
export class AppMap extends OwnedMap {
  /** Every key, by byKey. */
  #sorted = [];
  /** The keys passing `#shownFor`, by byKey; null until asked for. */
  #shown = null;
  #shownFor = null;
  /** Keys set or deleted since `#shown` was brought up to date. */
  #changed = new Set();

  constructor(entries = []) {
    super(); // not with the entries: this class's fields exist only once it returned
    // Sorted once: inserted one by one, 50,000 keys would move 50,000 times half the array.
    for (const [key, value] of entries) super.set(key, value);
    this.#sorted = [...this.keys()].sort(byKey);
  }

  set(key, value) {
    if (!super.has(key)) insertKey(this.#sorted, key);
    if (this.#shown) this.#changed.add(key);
    return super.set(key, value);
  }

  delete(key) {
    if (super.has(key)) removeKey(this.#sorted, key);
    if (this.#shown) this.#changed.add(key);
    return super.delete(key);
  }

  clear() {
    this.#sorted = [];
    this.#shown = null;
    this.#changed.clear();
    super.clear();
  }

  /**
   * The keys of the apps that `passes`, in list order. `filters` stands for what `passes` checks:
   * the same object as last time means the same test, so only the apps changed since are tested.
   * The array returned is the map's own: read it before the next change.
   */
  shownKeys(passes, filters) {
    if (!this.#shown || this.#shownFor !== filters) {
      this.#shown = this.#sorted.filter((key) => passes(this.get(key)));
      this.#shownFor = filters;
    } else {
      for (const key of this.#changed) {
        const app = this.get(key);
        if (app && passes(app)) insertKey(this.#shown, key);
        else removeKey(this.#shown, key);
      }
    }
    this.#changed.clear();
    return this.#shown;
  }
}
