/** What the gateway asks of each transport's registry of open connections in this process. */
export interface ConnectionHub {
  /** Open connections (parked polls, WebSockets or event streams). */
  readonly size: number;
  /**
   * Ends every connection the way a deploy should (parked polls answered with their cursors
   * unchanged, WebSockets closed 1001, event streams ended) and refuses new ones; resolves once
   * they are all released.
   */
  shutdown(): Promise<void>;
}
