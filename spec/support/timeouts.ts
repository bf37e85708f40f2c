/**
 * Counts the Timeouts (setTimeout) made with one length while it is on: give the code under test
 * a length no other timer in the process has, and what it counts is that code's.
 */
import { createHook } from 'node:async_hooks';

export function countTimeouts(lengthMs: number): { readonly made: number; readonly running: number; stop(): void } {
  let made = 0;
  // Made and not yet run out or cleared (a Timeout's async resource is destroyed then).
  const live = new Set<number>();
  const hook = createHook({
    init(id, type, _trigger, resource) {
      if (type === 'Timeout' && (resource as { _idleTimeout?: number })._idleTimeout === lengthMs) {
        made++;
        live.add(id);
      }
    },
    destroy(id) {
      live.delete(id);
    },
  }).enable();
  return {
    get made() {
      return made;
    },
    get running() {
      return live.size;
    },
    stop: () => void hook.disable(),
  };
}
