/**
 * The response code that `fn` throws as an instance of `type`, or 0 when `fn` returns. Any other
 * exception is thrown on.
 */
export function thrownRc(
  type: abstract new (...args: never[]) => { rc: number },
  fn: () => unknown,
): number {
  try {
    fn();
  } catch (err) {
    if (err instanceof type) return err.rc;
    throw err;
  }
  return 0;
}
