// A capped copy of an upstream answer's body, for the prediction log: the served exchange and the shadow mirror share it.

/**
 * Keeps at most `limit` bytes of the chunks it is given, without copying them (the chunks undici hands over are not
 * reused), and notes whether anything was cut. Created only when a request records its answer, so a request that
 * records nothing allocates nothing.
 */
export class ResponseCapture {
  readonly limit: number;
  #chunks: Buffer[] | null = null;
  #bytes = 0;
  truncated = false;

  constructor(limit: number) {
    this.limit = limit;
  }

  add(chunk: Buffer): void {
    if (this.truncated) return;
    const room = this.limit - this.#bytes;
    if (chunk.length > room) {
      this.truncated = true;
      if (room <= 0) return;
      chunk = chunk.subarray(0, room);
    }
    (this.#chunks ??= []).push(chunk);
    this.#bytes += chunk.length;
  }

  /** The captured bytes as one buffer (no copy for a single chunk), or null when nothing arrived. */
  body(): Buffer | null {
    const chunks = this.#chunks;
    if (chunks === null) return null;
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.#bytes);
  }
}

/** A capture for a limit from the observation port: null when nothing is to be kept. */
export function captureFor(limit: number): ResponseCapture | null {
  return limit > 0 ? new ResponseCapture(limit) : null;
}
