/**
 * Runs async sections one at a time, in call order. The TPM has three object slots that the key
 * provider manages (which children are loaded, which is evicted), so one key operation and its
 * loads and flushes must not interleave with another; the device's state files are read, changed
 * and written as one step.
 */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(section: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(section, section);
    this.#tail = result.catch(() => {});
    return result;
  }
}
