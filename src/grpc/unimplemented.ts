/** The answer of a declared method that is not built yet. */
import * as grpc from "@grpc/grpc-js";

/** A handler that fails with UNIMPLEMENTED naming the method. */
export function unimplemented(method: string): () => never {
  return () => {
    throw { code: grpc.status.UNIMPLEMENTED, details: `${method} is declared but not implemented yet` };
  };
}
