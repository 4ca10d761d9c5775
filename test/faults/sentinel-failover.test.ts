// A Redis Sentinel failover under load (1 master, 1 replica, 3 sentinels; the master SIGKILLed):
// no wrongful allow at any moment, service resumes on the promoted replica, and a revocation
// acknowledged just before the master died is still in force after the failover (the store
// confirms revocations with WAIT before reporting them done).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { buildCheckRequest } from "../../src/envoy/check-request.ts";
import { checkClient, type CheckClient } from "../harness/check-client.ts";
import { mixedKinds, startLoad, summarize, wrongfulAllows } from "../harness/load.ts";
import { startSentinel, type SentinelSetup } from "../harness/redis-topologies.ts";
import { openServerBackends, startTestServer, type TestServer } from "../harness/server.ts";

let sentinel: SentinelSetup;
let server: TestServer;
let client: CheckClient;
let backends: Awaited<ReturnType<typeof openServerBackends>>;

before(async () => {
  sentinel = await startSentinel();
  server = await startTestServer({ redisUrl: sentinel.url });
  client = checkClient(server.grpcPort);
  backends = await openServerBackends(server);
});

after(async () => {
  client.close();
  await backends.close();
  await server.stop();
  await sentinel.stop();
});

describe("Redis Sentinel failover", () => {
  it("0 wrongful allows, service resumes, a revocation made just before it holds after it", async () => {
    const issue = (owner: string) =>
      backends.tokens.issue({ scope: "prod/reports-read", owner, labels: {}, createdBy: "test" });
    const valid = (await issue("alice")).token;
    const revoked = await issue("mallory");
    await backends.tokens.revoke(revoked.record.id, "test");
    const lastMinute = await issue("eve");
    const lastMinuteCheck = () =>
      client.check(
        buildCheckRequest({
          token: lastMinute.token,
          method: "GET",
          path: "/v1/reports",
          host: "reports.prod.svc.cluster.local",
          namespace: "prod",
        }),
      );
    assert.equal((await lastMinuteCheck()).status?.code, 0);

    const load = startLoad({ client, kinds: mixedKinds(valid, revoked.token), concurrency: 8 });
    await sleep(500);
    // Acknowledged (WAIT-confirmed by the replica), then the master dies at once.
    await backends.tokens.revoke(lastMinute.record.id, "test");
    const { oldPort, newPort, failoverMs } = await sentinel.killMaster();
    const killedAt = load.elapsed() - failoverMs;
    let resumedAfter = -1;
    const giveUp = load.elapsed() + 20_000;
    while (load.elapsed() < giveUp) {
      const firstAllow = load.samples.find(
        (s) => s.kind === "valid" && s.allowed && s.at > killedAt + failoverMs,
      );
      if (firstAllow) {
        resumedAfter = firstAllow.at + firstAllow.ms - killedAt;
        break;
      }
      await sleep(20);
    }
    await sleep(300);
    const samples = await load.stop();
    console.log(
      `# Sentinel: master ${oldPort} killed, ${newPort} promoted after ${failoverMs} ms; allows resumed ${resumedAfter.toFixed(0)} ms after the kill; ${summarize(samples)}`,
    );
    const reasons = new Map<string, number>();
    for (const s of samples) reasons.set(s.reason, (reasons.get(s.reason) ?? 0) + 1);
    console.log(`# Sentinel: answers ${JSON.stringify(Object.fromEntries(reasons))}`);
    assert.deepEqual(wrongfulAllows(samples), [], "wrongful allows");
    assert.ok(resumedAfter >= 0, "allows resumed on the promoted replica");
    const after = await lastMinuteCheck();
    assert.equal(after.status?.message, "revoked", "the acknowledged revocation survived");
  });
});
