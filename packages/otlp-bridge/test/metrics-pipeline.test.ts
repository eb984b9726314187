import { afterEach, describe, expect, it } from "vitest";
import {
  createMetricsPipeline,
  httpMetricsUrl,
  type Logger,
  type MetricsPipelineConfig,
  resolveMetricsProtocol,
} from "../src/index.js";

const quiet: Logger = { warn() {}, info() {} };

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

function pipeline(config: MetricsPipelineConfig) {
  // a closed local port: nothing here may reach a real collector
  const p = createMetricsPipeline({ logger: quiet, timeoutMillis: 200, ...config });
  cleanups.push(() => p.shutdown());
  return p;
}

describe("metrics OTLP configuration", () => {
  it("resolves the protocol from config, METRICS_ then general env vars, else the port", () => {
    expect(resolveMetricsProtocol({}, {})).toBe("http/protobuf");
    expect(resolveMetricsProtocol({ protocol: "grpc" }, { OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: "http/protobuf" })).toBe(
      "grpc",
    );
    expect(resolveMetricsProtocol({}, { OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: "grpc" })).toBe("grpc");
    expect(resolveMetricsProtocol({}, { OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })).toBe("grpc");
    expect(
      resolveMetricsProtocol(
        {},
        { OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: "http/protobuf", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" },
      ),
    ).toBe("http/protobuf");
    // the traces-specific variables do not apply to metrics
    expect(resolveMetricsProtocol({}, { OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "grpc" })).toBe("http/protobuf");
    expect(resolveMetricsProtocol({}, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c:4317" })).toBe("http/protobuf");
    expect(resolveMetricsProtocol({}, { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "http://c:4317" })).toBe("grpc");
    expect(resolveMetricsProtocol({}, { OTEL_EXPORTER_OTLP_ENDPOINT: "c:4317" })).toBe("grpc");
    expect(resolveMetricsProtocol({ endpoint: "http://c:4318" }, {})).toBe("http/protobuf");
    const warnings: string[] = [];
    expect(resolveMetricsProtocol({}, { OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" }, (m) => warnings.push(m))).toBe(
      "http/protobuf",
    );
    expect(warnings).toHaveLength(1);
  });

  it("appends /v1/metrics to a base URL only", () => {
    expect(httpMetricsUrl("http://c:4318")).toBe("http://c:4318/v1/metrics");
    expect(httpMetricsUrl("http://c:4318/")).toBe("http://c:4318/v1/metrics");
    expect(httpMetricsUrl("http://c:4318/custom/path")).toBe("http://c:4318/custom/path");
  });

  it("exports nowhere without an endpoint, and binds nothing", async () => {
    const p = pipeline({ env: {} });
    await p.ready;
    expect([p.kind, p.target, p.prometheusUrl]).toEqual(["none", "none", undefined]);
  });

  it("picks OTLP from the environment like the trace side", () => {
    expect(pipeline({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1" } })).toMatchObject({
      kind: "otlp-http",
      target: "http://127.0.0.1:1/v1/metrics",
    });
    expect(pipeline({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4317" } })).toMatchObject({
      kind: "otlp-grpc",
      target: "http://127.0.0.1:4317",
    });
    expect(
      pipeline({
        env: {
          OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1",
          OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "http://127.0.0.1:2/m",
        },
      }),
    ).toMatchObject({ kind: "otlp-http", target: "http://127.0.0.1:2/m" });
    // OTEL_METRICS_EXPORTER decides when set
    expect(
      pipeline({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1", OTEL_METRICS_EXPORTER: "none" } }).kind,
    ).toBe("none");
    expect(pipeline({ env: { OTEL_METRICS_EXPORTER: "otlp" } })).toMatchObject({
      kind: "otlp-http",
      target: "http://localhost:4318/v1/metrics",
    });
    // config wins over the environment
    expect(pipeline({ env: { OTEL_METRICS_EXPORTER: "otlp" }, exporter: "none" }).kind).toBe("none");
    expect(pipeline({ env: {}, endpoint: "http://127.0.0.1:1", protocol: "grpc" })).toMatchObject({
      kind: "otlp-grpc",
      target: "http://127.0.0.1:1",
    });
  });

  it("shutdown is idempotent and record() after it is a no-op", async () => {
    const p = pipeline({ env: {}, prometheus: { port: 0 } });
    await p.ready;
    await p.shutdown();
    await p.shutdown();
    expect(p.prometheusUrl).toBeUndefined();
    p.record([], () => ({}));
    expect(p.stats().records).toBe(0);
  });
});
