/** Small fetch helpers for talking to a gateway over real HTTP. */
export interface PollBody {
  messages: { stream: string; seq: number; id: string; ts: number; data: unknown }[];
  cursor: string;
  gaps?: { stream: string; from: number; to: number }[];
  resets?: string[];
}

export async function send(url: string, key: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${url}/send`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

export async function sendOk(url: string, key: string, body: unknown): Promise<any> {
  const r = await send(url, key, body);
  if (r.status !== 200) throw new Error(`send failed: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
}

export async function poll(url: string, key: string, params: Record<string, string | number | undefined>, signal?: AbortSignal): Promise<PollBody> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
  const res = await fetch(`${url}/poll?${q}`, { headers: { authorization: `Bearer ${key}` }, signal });
  const json = await res.json();
  if (res.status !== 200) throw new Error(`poll failed: ${res.status} ${JSON.stringify(json)}`);
  return json as PollBody;
}

/** GET /stats of a gateway (API key). */
export async function stats(url: string, key: string): Promise<{ parkedPolls: number; waiters: number; subscribedStreams: number; [k: string]: unknown }> {
  const res = await fetch(`${url}/stats`, { headers: { authorization: `Bearer ${key}` } });
  if (res.status !== 200) throw new Error(`stats failed: ${res.status}`);
  return (await res.json()) as any;
}

/** Resolves once a gateway (possibly another process) reports at least `n` parked polls. */
export async function untilParked(url: string, key: string, n: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await stats(url, key)).parkedPolls < n) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} parked polls at ${url}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
