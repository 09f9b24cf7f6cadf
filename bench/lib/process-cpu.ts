/** A process's CPU time as the kernel counts it, for figures of server CPU per call. */
import { readFile } from "node:fs/promises";

/** Clock ticks per second of /proc's utime and stime (USER_HZ: 100 on Linux everywhere that matters). */
const TICKS_PER_SECOND = 100;

/**
 * User + system CPU time of process `pid` and all its threads so far, in ms (10 ms resolution),
 * from /proc/<pid>/stat: it reads the same for the service and for a baseline server, without
 * either one's co-operation.
 */
export async function processCpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces, so skip past its closing parenthesis):
  // state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
}
