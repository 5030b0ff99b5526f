/** Lets tests wait for a stand-in's recorded state to satisfy a predicate, re-checked on each change. */
export class Watch {
  private listeners: (() => void)[] = [];

  /** Resolves when `pred` holds. */
  waitFor(pred: () => boolean): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (pred()) {
          this.listeners = this.listeners.filter((l) => l !== check);
          resolve();
        }
      };
      this.listeners.push(check);
    });
  }

  /** Call after every state change. */
  readonly changed = (): void => {
    for (const l of [...this.listeners]) l();
  };
}
