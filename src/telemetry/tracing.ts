/**
 * OpenTelemetry traces, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set: then the OpenTelemetry
 * Node SDK exports spans over OTLP/HTTP, with the gRPC instrumentation (a server span per call,
 * rpc.* attributes) and the pg instrumentation (a child span per SQL statement on Postgres).
 * Everything else OTel reads from its standard variables (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
 * OTEL_TRACES_SAMPLER, …).
 *
 * The instrumentations patch @grpc/grpc-js and pg as they load, so this must run before anything
 * imports them: main.ts starts it first and only then imports the app. The packages are loaded
 * only when tracing is on, so a service without it pays nothing.
 */
import { register } from "node:module";

/** Stops tracing, flushing spans not yet exported. */
export type StopTracing = () => Promise<void>;

/** Starts tracing when `env` names an OTLP endpoint; resolves to how to stop it, or undefined when off. */
export async function startTracing(env: NodeJS.ProcessEnv = process.env): Promise<StopTracing | undefined> {
  if ((env.OTEL_EXPORTER_OTLP_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? "").trim() === "") return undefined;
  // ES modules import grpc-js and pg without require(): the import-in-the-middle hook lets the
  // instrumentations see those imports too.
  register("@opentelemetry/instrumentation/hook.mjs", import.meta.url);
  const [{ NodeSDK }, { OTLPTraceExporter }, { GrpcInstrumentation }, { PgInstrumentation }] = await Promise.all([
    import("@opentelemetry/sdk-node"),
    import("@opentelemetry/exporter-trace-otlp-http"),
    import("@opentelemetry/instrumentation-grpc"),
    import("@opentelemetry/instrumentation-pg"),
  ]);
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME ?? "segments",
    traceExporter: new OTLPTraceExporter(),
    instrumentations: [new GrpcInstrumentation(), new PgInstrumentation()],
  });
  sdk.start();
  return () => sdk.shutdown();
}
