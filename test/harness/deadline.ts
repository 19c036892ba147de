/**
 * A bound on what a test waits for, where the failure it guards against is a hang: the test then
 * fails with what `why` says at that moment, instead of holding its file until the runner's limit.
 */
export async function withinDeadline<T>(work: Promise<T>, ms: number, why: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(why())), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
