/**
 * Server reflection (so `buf curl` and grpcurl can list and call us), fed with the descriptors
 * protobuf-es generated, plus the reflection service's own file so it lists itself too.
 */
import { createRequire } from "node:module";
import type { DescFile } from "@bufbuild/protobuf";
import { toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";

/** Adds grpc.reflection.v1 and v1alpha, describing `files` and everything they import. */
export function addReflection(server: grpc.Server, files: readonly DescFile[]): void {
  const encoded = [...closure(files)].map((file) => Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto)));
  const reflectionProto = createRequire(import.meta.url).resolve("@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto");
  const own = loadSync(reflectionProto);
  const definition = { ...own, "segments.descriptors": { fileDescriptorProtos: encoded } };
  new ReflectionService(definition as unknown as ConstructorParameters<typeof ReflectionService>[0]).addToServer(server);
}

function closure(files: readonly DescFile[], seen = new Set<DescFile>()): Set<DescFile> {
  for (const file of files) {
    if (seen.has(file)) continue;
    seen.add(file);
    closure(file.dependencies, seen);
  }
  return seen;
}
