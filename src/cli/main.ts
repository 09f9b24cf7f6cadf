#!/usr/bin/env node
/**
 * `segments`: the command line of the service, on the typed client (`segments/client`) like any
 * other caller. Address, token and TLS files come from flags or SEGMENTS_* variables; output is a
 * human table, or JSON with --json; the exit code is the failed call's gRPC status code (0 on
 * success, 64 for a command-line mistake).
 */
import { Command, CommanderError } from "commander";
import { SegmentsError } from "../client/index.js";
import { memberCommands } from "./member-commands.js";
import { segmentCommands } from "./segment-commands.js";
import { tokenCommands } from "./token-commands.js";

/** Exit code of a command line the CLI cannot run (sysexits EX_USAGE); gRPC codes stop at 16. */
const USAGE = 64;

function program(): Command {
  const root = new Command("segments")
    .description("Manage and query the Segments service")
    .option("--address <host:port>", "service address (SEGMENTS_ADDRESS)", process.env.SEGMENTS_ADDRESS ?? "127.0.0.1:50051")
    // No default from the environment here: commander would print it in --help.
    .option("--token <token>", "API token (else SEGMENTS_TOKEN)")
    .option("--ca <file>", "CA certificate to trust: TLS (SEGMENTS_CA)", process.env.SEGMENTS_CA)
    .option("--cert <file>", "client certificate for mTLS (SEGMENTS_CERT)", process.env.SEGMENTS_CERT)
    .option("--key <file>", "client private key for mTLS (SEGMENTS_KEY)", process.env.SEGMENTS_KEY)
    .option("--json", "print JSON instead of tables")
    .exitOverride()
    .showHelpAfterError();
  segmentCommands(root);
  memberCommands(root);
  tokenCommands(root);
  return root;
}

async function main(): Promise<void> {
  try {
    await program().parseAsync(process.argv);
  } catch (error: unknown) {
    if (error instanceof CommanderError) {
      // Help and --version exit 0; anything else commander refused is a usage error.
      process.exitCode = error.exitCode === 0 ? 0 : USAGE;
      return;
    }
    if (error instanceof SegmentsError) {
      process.stderr.write(`segments: ${error.codeName}: ${error.message}\n`);
      process.exitCode = error.code;
      return;
    }
    process.stderr.write(`segments: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}

await main();
