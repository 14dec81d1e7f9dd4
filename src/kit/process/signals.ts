// Runs until SIGTERM or SIGINT, then stops gracefully once; a second signal exits at once.
export function untilSignal(stop: () => Promise<void>, say: (msg: string) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals) => {
      if (stopping) {
        say(`${sig} again: exiting now`);
        process.exit(1);
      }
      stopping = true;
      say(`${sig}: finishing in-flight requests, flushing clicks…`);
      stop().then(resolve, (err: unknown) => {
        say(`error while stopping: ${(err as Error).message}`);
        resolve();
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
