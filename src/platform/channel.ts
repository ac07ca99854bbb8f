/**
 * An unbounded queue of values that one consumer reads as an async iterable, in the order they were pushed: how values
 * a thread posts (messages, events) become the `for await` loops their consumer already has for a socket. `end` closes
 * it: the reader gets what was queued, then stops, or gets the error if one is given.
 */
export class Channel<T> implements AsyncIterable<T> {
  private readonly queued: T[] = [];
  private waiting: { resolve: (r: IteratorResult<T>) => void; reject: (e: Error) => void } | null = null;
  private ended: { error: Error | null } | null = null;

  push(value: T): void {
    if (this.ended) return;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      w.resolve({ value, done: false });
    } else this.queued.push(value);
  }

  /** No more values: the reader stops after those queued (with `error`, if given). Later pushes and ends are ignored. */
  end(error: Error | null = null): void {
    if (this.ended) return;
    this.ended = { error };
    const w = this.waiting;
    this.waiting = null;
    if (w) {
      if (error) w.reject(error);
      else w.resolve({ value: undefined, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.queued.length > 0) return Promise.resolve({ value: this.queued.shift()!, done: false });
        if (this.ended) return this.ended.error ? Promise.reject(this.ended.error) : Promise.resolve({ value: undefined, done: true });
        if (this.waiting) return Promise.reject(new Error("Channel: one reader at a time"));
        return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
      },
    };
  }
}
