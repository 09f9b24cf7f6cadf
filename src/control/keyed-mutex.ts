import { throwIfOver, untilAborted } from "./cancellation.js";

/**
 * Serializes async work per key: mutations on one segment run one at a time, in arrival order,
 * while different segments proceed in parallel (and the embedded store's single connection is
 * shared the same way). Readers never take it.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  /**
   * Runs `fn` once every earlier call for `key` has settled. A `signal` that aborts while the
   * call waits rejects it at once with the signal's reason, and `fn` never runs: a call that gave
   * up leaves no trace. Once `fn` has started, the call settles with `fn`'s own outcome — its
   * caller must learn whether it committed.
   */
  async run<T>(key: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    throwIfOver(signal);
    const previous = this.tails.get(key) ?? Promise.resolve();
    let started = false;
    const turn = () => {
      throwIfOver(signal);
      started = true;
      return fn();
    };
    const current = previous.then(turn, turn);
    const tail = current.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    try {
      return await (signal === undefined ? current : untilAborted(current, signal, () => !started));
    } finally {
      // Drop the entry once nothing is queued behind us, so the map does not grow forever.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
