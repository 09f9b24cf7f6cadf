/** `segments token create | list | revoke` and `segments whoami`. */
import { type Command, Option } from "commander";
import { type ApiToken, Role, timestampDate } from "../client/index.js";
import { table, withSession } from "./connection.js";

const ROLES: Record<string, Role> = { reader: Role.READER, writer: Role.WRITER, admin: Role.ADMIN };

/** Adds the token commands to `root`. */
export function tokenCommands(root: Command): void {
  const token = root.command("token").description("API tokens (admin)");
  token
    .command("create")
    .description("create a token; its bearer string is printed once and never again")
    .requiredOption("--name <name>", "what the token is for (the audit trail names it)")
    .addOption(new Option("--role <role>", "what it may do").choices(Object.keys(ROLES)).makeOptionMandatory())
    .action((options: { name: string; role: string }, command: Command) =>
      withSession(command, async ({ client, print }) => {
        const made = await client.access.createApiToken({ name: options.name, role: ROLES[options.role] ?? Role.UNSPECIFIED });
        print({ token: made.token && plain(made.token), bearerToken: made.bearerToken }, (v) =>
          [`created ${v.token?.role} token ${v.token?.id} (${v.token?.name}); store it now, it is not shown again:`, v.bearerToken].join(
            "\n",
          ),
        );
      }),
    );
  token
    .command("list")
    .description("list tokens (never their secrets)")
    .option("--all", "include revoked tokens")
    .action((options: { all?: boolean }, command: Command) =>
      withSession(command, async ({ client, print }) => {
        const { tokens } = await client.access.listApiTokens({ includeRevoked: options.all === true });
        print(tokens.map(plain), (rows) =>
          table(
            ["ID", "NAME", "ROLE", "CREATED", "CREATED BY", "REVOKED"],
            rows.map((t) => [t.id, t.name, t.role, t.created, t.createdBy, t.revoked ?? ""]),
          ),
        );
      }),
    );
  token
    .command("revoke")
    .description("revoke a token: refused on its next call")
    .argument("<id>", "the token's id (the 12 characters after sgt_)")
    .action((id: string, _options: unknown, command: Command) =>
      withSession(command, async ({ client, print }) => {
        const { token: revoked } = await client.access.revokeApiToken({ id });
        print(revoked && plain(revoked), (t) => `revoked token ${t?.id} (${t?.name}) at ${t?.revoked}`);
      }),
    );
  root
    .command("whoami")
    .description("the identity calls run as")
    .action((_options: unknown, command: Command) =>
      withSession(command, async ({ client, print }) => {
        const who = await client.access.whoAmI({});
        const identity = { authenticated: who.authenticated, tokenId: who.tokenId, name: who.name, role: roleName(who.role) };
        print(
          identity,
          (w) => `${w.name}${w.tokenId === "" ? "" : ` (token ${w.tokenId})`}: ${w.role}${w.authenticated ? "" : " (authentication off)"}`,
        );
      }),
    );
}

function roleName(role: Role): string {
  return Object.keys(ROLES).find((name) => ROLES[name] === role) ?? "unspecified";
}

function plain(token: ApiToken) {
  return {
    id: token.id,
    name: token.name,
    role: roleName(token.role),
    created: token.createTime === undefined ? "" : timestampDate(token.createTime).toISOString(),
    createdBy: token.createdBy,
    revoked: token.revokeTime === undefined ? undefined : timestampDate(token.revokeTime).toISOString(),
    revokedBy: token.revokedBy === "" ? undefined : token.revokedBy,
  };
}
