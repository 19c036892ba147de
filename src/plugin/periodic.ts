/**
 * One background job of a running plugin repeated until the plugin stops: run now, then again
 * after the seconds each run resolves to, never two runs at once, and stop() waits for the run
 * under way (the retention loop, the readiness check).
 */
export interface Periodic {
  /** Resolves after the run under way, if any, has finished; no run starts afterwards. */
  stop(): Promise<void>;
}

/** `run` must not reject: it handles its own failures and says when to run next. */
export function repeatUntilStopped(run: () => Promise<number>): Periodic {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const next = () => {
    timer = undefined;
    running = run().then((seconds) => {
      running = undefined;
      if (!stopped) timer = setTimeout(next, seconds * 1000);
    });
  };
  next();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
