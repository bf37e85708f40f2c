/** The part of Faye's server API bench/peers/faye-server.ts uses (faye ships no types). */
declare module 'faye' {
  interface BayeuxMessage {
    channel: string;
    clientId?: string;
    data?: unknown;
    ext?: { key?: string };
    error?: string;
  }
  interface Extension {
    incoming?(message: BayeuxMessage, callback: (m: BayeuxMessage) => void): void;
    outgoing?(message: BayeuxMessage, callback: (m: BayeuxMessage) => void): void;
  }
  class NodeAdapter {
    constructor(options: { mount: string; timeout?: number; ping?: number });
    addExtension(extension: Extension): void;
    attach(server: import('node:http').Server): void;
  }
  const faye: { NodeAdapter: typeof NodeAdapter };
  export default faye;
}
