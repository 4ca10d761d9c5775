import { createServer } from "node:net";

/**
 * A loopback port that was free a moment ago. Another process could take it before the caller
 * binds it; the harness starts servers right away, which is good enough for tests.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === "object") resolve(address.port);
        else reject(new Error("could not read the bound port"));
      });
    });
  });
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/**
 * A free port for a Redis Cluster node, whose cluster bus listens on port + 10000: both must be
 * free, and the bus port must exist (an ephemeral port above 55535 has none).
 */
export async function freeClusterPort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 30000);
    if ((await canBind(port)) && (await canBind(port + 10000))) return port;
  }
  throw new Error("no free port pair (port, port + 10000) for a Redis Cluster node");
}
