/**
 * auth: what authentication costs the hot path. CheckMembership with authentication on (every
 * call carries a stored reader token: parsed, found by id, compared in constant time, role
 * checked) vs off, on the same store and data (bench/lib/check-arms.ts). Goal: on ≥ 0.95× off.
 */
import { randomBytes } from "node:crypto";
import { createClient } from "../../src/client/client.js";
import { AccessService, Role } from "../../src/gen/segments/v1/access_service_pb.js";
import { compareArms } from "../lib/check-arms.js";
import type { BenchContext } from "../lib/context.js";
import type { Row } from "../lib/report.js";

/** Runs the auth scenario. */
export async function authScenario(ctx: BenchContext, log: (line: string) => void): Promise<Row[]> {
  const adminToken = randomBytes(32).toString("hex");
  const admin = { metadata: { authorization: `Bearer ${adminToken}` } };
  return compareArms(
    ctx,
    log,
    "auth",
    {
      // Both arms run at once on one store. The "off" process starts first, finds no token, and
      // does not look again (TOKEN_REFRESH_MS at its maximum, an hour), so the token the "on" arm
      // creates leaves it off for the whole round.
      baseline: { name: "authentication off (no token)", env: { TOKEN_REFRESH_MS: "3600000" } },
      variant: {
        name: "on",
        env: { ADMIN_TOKEN: adminToken },
        // A stored reader token, as a flag evaluator would hold; revoked after, so the next round's "off" start finds none.
        prepare: async (service) => {
          const access = createClient(AccessService, service.address);
          const made = await access.createApiToken({ name: "bench reader", role: Role.READER }, admin);
          return {
            target: { token: made.bearerToken },
            done: async () => {
              await access.revokeApiToken({ id: made.token?.id ?? "" }, admin);
              access.close();
            },
          };
        },
      },
    },
    ctx.options.armRounds,
    ctx.options.armPairs,
  );
}
