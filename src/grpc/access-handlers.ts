/** AccessService over gRPC: API tokens and the caller's own identity. */
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { TokenService } from "../auth/token-service.js";
import { InvalidArgumentError } from "../errors.js";
import { type AccessService as AccessServiceDesc, Role as RoleMessage } from "../gen/segments/v1/access_service_pb.js";
import type { Role } from "../model.js";
import type { StoredToken } from "../store/token-store.js";
import type { ServiceHandlers } from "./adapter.js";

const TO_PROTO: Record<Role, RoleMessage> = { reader: RoleMessage.READER, writer: RoleMessage.WRITER, admin: RoleMessage.ADMIN };

/** Handlers for every AccessService method. */
export function accessHandlers(tokens: TokenService): ServiceHandlers<typeof AccessServiceDesc> {
  return {
    createApiToken: async (req, ctx) => {
      const created = await tokens.create(req.name, roleFromProto(req.role), ctx.identity, ctx.signal);
      return { token: tokenToProto(created.token), bearerToken: created.bearer };
    },
    listApiTokens: async (req) => ({ tokens: (await tokens.list(req.includeRevoked)).map(tokenToProto) }),
    revokeApiToken: async (req, ctx) => ({ token: tokenToProto(await tokens.revoke(req.id, ctx.identity, ctx.signal)) }),
    whoAmI: (_req, ctx) => ({
      authenticated: ctx.identity.authenticated,
      tokenId: ctx.identity.tokenId,
      name: ctx.identity.name,
      role: TO_PROTO[ctx.identity.role],
    }),
  };
}

function roleFromProto(role: RoleMessage): Role {
  const found = (Object.keys(TO_PROTO) as Role[]).find((r) => TO_PROTO[r] === role);
  if (found === undefined) throw new InvalidArgumentError("role", "must be ROLE_READER, ROLE_WRITER or ROLE_ADMIN");
  return found;
}

function tokenToProto(token: StoredToken) {
  return {
    id: token.id,
    name: token.name,
    role: TO_PROTO[token.role],
    createTime: timestampFromDate(token.createdAt),
    createdBy: token.createdBy,
    revokeTime: token.revokedAt === null ? undefined : timestampFromDate(token.revokedAt),
    revokedBy: token.revokedBy,
  };
}
