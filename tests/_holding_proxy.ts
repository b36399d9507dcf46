// A TCP proxy for the connector conformance suite that can hold a client's bytes back from its
// server: with the proxy holding, the server sees nothing new and cannot answer, so a sink writing
// through it must not get (nor report) an acknowledgement.

/**
 * A TCP proxy to `127.0.0.1:target`. `hold()` stops forwarding what clients send; `release()`
 * forwards it all, in order. What the server sends back always goes through.
 */
export class HoldingProxy {
  readonly #listener: Deno.TcpListener;
  readonly #target: number;
  readonly #conns = new Set<Deno.TcpConn>();
  readonly #pumps = new Set<Promise<void>>();
  #held = false;
  #waiters: (() => void)[] = [];
  readonly #accepting: Promise<void>;

  constructor(target: number) {
    this.#target = target;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  /** The port clients connect to. */
  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** Client connections open through the proxy right now. */
  get connections(): number {
    return this.#pumps.size;
  }

  async #accept(): Promise<void> {
    try {
      for await (const client of this.#listener) {
        let server: Deno.TcpConn;
        try {
          server = await Deno.connect({ hostname: "127.0.0.1", port: this.#target });
        } catch {
          client.close();
          continue;
        }
        this.#conns.add(client).add(server);
        const pump: Promise<void> = Promise.all([
          this.#pump(client, server, true),
          this.#pump(server, client, false),
        ]).then(() => {
          this.#conns.delete(client);
          this.#conns.delete(server);
          this.#pumps.delete(pump);
        });
        this.#pumps.add(pump);
      }
    } catch { /* the listener was closed */ }
  }

  async #pump(from: Deno.TcpConn, to: Deno.TcpConn, holdable: boolean): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        while (holdable && this.#held) await new Promise<void>((r) => this.#waiters.push(r));
        for (let at = 0; at < n;) at += await to.write(buf.subarray(at, n));
      }
    } catch { /* closed */ }
    for (const c of [from, to]) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
  }

  /** Stops forwarding client bytes to the server. */
  hold(): void {
    this.#held = true;
  }

  /** Forwards client bytes again. */
  release(): void {
    this.#held = false;
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Closes the listener and every connection. */
  async close(): Promise<void> {
    this.release();
    this.#listener.close();
    await this.#accepting;
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
    await Promise.all(this.#pumps);
  }
}
