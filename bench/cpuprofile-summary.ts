/**
 * Summarises a V8 .cpuprofile (from `SERVICE_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR"`): self
 * time per function, and the garbage collector's share of busy time.
 *
 *   tsx bench/cpuprofile-summary.ts FILE.cpuprofile [--during NAME] [--top N] [--inclusive A,B]
 *
 * With --during, only samples from the first to the last one whose stack holds a function named
 * NAME count (e.g. `--during checkMembership`: the check scenario's CheckMembership runs).
 * --inclusive lists the total time of samples with each named function on their stack.
 */
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { during: { type: "string" }, top: { type: "string", default: "25" }, inclusive: { type: "string", default: "" } },
  });
  const file = positionals[0];
  if (file === undefined) throw new Error("usage: cpuprofile-summary FILE.cpuprofile [--during NAME] [--top N]");
  const profile = JSON.parse(await readFile(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  // Each sample's duration is the delta to the next sample (the last has none to go by).
  const times = profile.samples.map((_, i) => profile.timeDeltas[i + 1] ?? 0);
  const holds = (id: number, name: string): boolean => {
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at))
      if (byId.get(at)?.callFrame.functionName === name) return true;
    return false;
  };
  let [from, to] = [0, profile.samples.length];
  if (values.during !== undefined) {
    const name = values.during;
    const holds = (id: number): boolean => {
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at))
        if (byId.get(at)?.callFrame.functionName === name) return true;
      return false;
    };
    from = profile.samples.findIndex(holds);
    to = profile.samples.findLastIndex(holds) + 1;
    if (from < 0) throw new Error(`no sample has ${name} on its stack`);
  }
  const self = new Map<string, number>();
  let total = 0;
  for (let i = from; i < to; i++) {
    const node = byId.get(profile.samples[i] ?? -1);
    if (node === undefined) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url === "" ? "" : ` ${url.replace(/^.*\/(node_modules|dist)\//, "$1/")}:${lineNumber + 1}`;
    const key = `${functionName || "(anonymous)"}${where}`;
    const us = times[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + us);
    total += us;
  }
  const idle = self.get("(idle)") ?? 0;
  const busy = total - idle;
  const gc = self.get("(garbage collector)") ?? 0;
  const ms = (us: number) => (us / 1000).toFixed(1);
  process.stdout.write(
    `window ${ms(total)} ms, busy ${ms(busy)} ms (${((100 * busy) / total).toFixed(1)}%), GC ${ms(gc)} ms = ${((100 * gc) / busy).toFixed(1)}% of busy\n`,
  );
  for (const name of values.inclusive.split(",").filter((n) => n !== "")) {
    let us = 0;
    for (let i = from; i < to; i++) if (holds(profile.samples[i] ?? -1, name)) us += times[i] ?? 0;
    process.stdout.write(`inclusive ${name}: ${ms(us)} ms = ${((100 * us) / busy).toFixed(1)}% of busy\n`);
  }
  const ranked = [...self].filter(([key]) => key !== "(idle)").sort((a, b) => b[1] - a[1]);
  for (const [key, us] of ranked.slice(0, Number(values.top)))
    process.stdout.write(`${((100 * us) / busy).toFixed(1).padStart(5)}%  ${ms(us).padStart(8)} ms  ${key}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
