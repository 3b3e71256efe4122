/**
 * Runs async tasks one at a time, in the order they were queued.
 *
 * A TPM executes one command at a time. The TCP server funnels every client's commands and
 * platform signals through one queue, and each transport funnels its callers' send() calls
 * through one, so two commands never interleave on the device or on a connection.
 */
export class SerialQueue {
  #tail: Promise<void> = Promise.resolve();

  /** Queues `task`; the result settles with the task's own result once it has run. */
  run<T>(task: () => Promise<T> | T): Promise<T> {
    const result = this.#tail.then(task);
    // A failed task must not stall the tasks queued behind it.
    this.#tail = result.then(ignore, ignore);
    return result;
  }

  /** Resolves once every task queued so far has settled. */
  idle(): Promise<void> {
    return this.#tail;
  }
}

function ignore(): void {}
