/**
 * Whether tracing is on, without loading OpenTelemetry (its packages take ~300 ms to import):
 * the OTLP endpoint for traces, or undefined when none is set or the SDK is disabled
 * (OTEL_SDK_DISABLED=true, the standard switch).
 */
export function otlpTracesEndpoint(env: Record<string, string | undefined>): string | undefined {
  const endpoint = (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT)?.trim();
  return endpoint && env.OTEL_SDK_DISABLED?.trim() !== 'true' ? endpoint : undefined;
}
