/**
 * Counts the Timeouts (setTimeout) made with one length while it is on: give the code under test
 * a length no other timer in the process has, and what it counts is that code's.
 */
import { createHook } from 'node:async_hooks';

export function countTimeouts(lengthMs: number): { readonly made: number; stop(): void } {
  let made = 0;
  const hook = createHook({
    init(_id, type, _trigger, resource) {
      if (type === 'Timeout' && (resource as { _idleTimeout?: number })._idleTimeout === lengthMs) made++;
    },
  }).enable();
  return {
    get made() {
      return made;
    },
    stop: () => void hook.disable(),
  };
}
