// The build emits JavaScript only; the SQL migrations are read at run time beside it.
import { cpSync } from "node:fs";

cpSync("src/store/migrations", "dist/store/migrations", { recursive: true });
