/**
 * The headers every answer carries (the request id, nosniff, Referrer-Policy, CORS, a drain's
 * Connection: close), set when the answer's head is about to be written, not when the request
 * arrives. A parked poll then holds none of them for its whole hold: each header is an entry of
 * its own on the response, and what a parked poll holds is what V8's young generation copies and
 * then promotes, at a cost per byte (docs/PERFORMANCE.md, "What a scavenge promotes").
 *
 * Three places write an answer's head, and each applies the rules first: wayOut on the way out
 * of the pipeline (lib/http/way-out.ts: every answer Koa writes, errors included), LaterAnswers
 * for a parked poll's answer, and the SSE route before it hands its response over.
 */
import type { Context } from 'koa';

/** Sets some of an answer's headers; never throws. */
export type HeadRule = (ctx: Context) => void;

/** The rules, in order, as one. */
export function answerHead(rules: readonly HeadRule[]): HeadRule {
  return (ctx) => {
    for (const rule of rules) rule(ctx);
  };
}
