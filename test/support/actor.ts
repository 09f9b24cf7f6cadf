/** The actor of changes a test makes through the services directly, with no call behind them. */
import type { Actor } from "../../src/service/segment-service.js";

export const NOBODY: Actor = { caller: "", onBehalfOf: "" };
