/** Server-side calls the client tests make with the API key: send, and read a stream from its start. */

export interface StoredMessage {
  stream: string;
  seq: number;
  id: string;
  data: unknown;
}

/** POST /send of one message; resolves with its result. */
export async function sendAs(url: string, key: string, stream: string, data: unknown, id?: string): Promise<{ seq: number; id: string }> {
  const res = await fetch(`${url}/send`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ stream, data, id }),
  });
  const json = (await res.json()) as { results?: { seq: number; id: string }[]; error?: unknown };
  if (res.status !== 200 || !json.results) throw new Error(`send failed: ${res.status} ${JSON.stringify(json)}`);
  return json.results[0]!;
}

/** Every retained message of a stream, oldest first (one immediate poll from the earliest). */
export async function readStream(url: string, key: string, stream: string): Promise<StoredMessage[]> {
  const res = await fetch(`${url}/poll?streams=${encodeURIComponent(stream)}&since=earliest&timeout=0&limit=1000`, {
    headers: { Authorization: `Bearer ${key}` },
  });
  const json = (await res.json()) as { messages: StoredMessage[] };
  if (res.status !== 200) throw new Error(`poll failed: ${res.status} ${JSON.stringify(json)}`);
  return json.messages;
}
