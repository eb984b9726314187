import type { RequestRecord } from "@kalman/flow-aggregator";
import { afterEach, describe, expect, it } from "vitest";
import { createMetricsPipeline, type Logger, type MetricsPipelineConfig, OVERFLOW_ENDPOINT } from "../src/index.js";
import { OtlpMetricsGrpcReceiver, syntheticRecord as rec } from "./support/otlp-metrics-receiver.js";

const quiet: Logger = { warn() {}, info() {} };
const N = 10_000;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

/** A word of letters only (never id-like): 0 -> "aaaa", 1 -> "aaab", ... */
function word(i: number): string {
  let s = "";
  let n = i;
  for (let k = 0; k < 4; k++) {
    s = String.fromCharCode(97 + (n % 26)) + s;
    n = Math.floor(n / 26);
  }
  return s;
}

/** N server-side requests to N distinct, non-id paths. */
function distinctPaths(): RequestRecord[] {
  return Array.from({ length: N }, (_, i) => rec({ endpoint: `/items/${word(i)}`, ms: 1 + (i % 50) }));
}

async function setup(config: MetricsPipelineConfig) {
  const rx = await OtlpMetricsGrpcReceiver.create();
  cleanups.push(() => rx.stop());
  const p = createMetricsPipeline({
    logger: quiet,
    env: {},
    endpoint: rx.endpoint,
    protocol: "grpc",
    exportIntervalMillis: 500,
    ...config,
  });
  cleanups.push(() => p.shutdown());
  return { rx, p };
}

/** Waits until the received http.server histogram accounts for all N requests. */
async function waitForAll(rx: OtlpMetricsGrpcReceiver): Promise<void> {
  await rx.waitFor(
    (latest) =>
      latest.filter((x) => x.name === "http.server.request.duration").reduce((sum, x) => sum + (x.count ?? 0), 0) === N,
    30_000,
    `${N} requests in http.server.request.duration`,
  );
}

describe("cardinality caps", () => {
  it("10,000 distinct paths stay under the per-service template cap; the rest go to _other", async () => {
    const { rx, p } = await setup({});
    p.record(distinctPaths(), () => ({ server: "shop", client: "web" }));
    await waitForAll(rx);

    const series = rx.find("http.server.request.duration", {}, "shop");
    // 1000 templates + the "_other" bucket, far under the 2000-series cap
    expect(series).toHaveLength(1001);
    const other = series.filter((x) => x.attributes["http.route"] === OVERFLOW_ENDPOINT);
    expect(other).toHaveLength(1);
    expect(other[0]?.count).toBe(N - 1000);
    expect(series.filter((x) => x.attributes["otel.metric.overflow"] === true)).toHaveLength(0);

    const s = p.stats();
    expect(s.templates).toEqual({ services: 1, templates: 1000, overflowed: N - 1000 });
    expect(s.overflow).toEqual({ series: 0, endpoints: N - 1000 });
    const overflowCounter = rx.find("kalman.metrics.overflow", {
      metric: "http.server.request.duration",
      reason: "endpoint",
    });
    expect(overflowCounter[0]?.value).toBe(N - 1000);
    // the service graph edge is one series whatever the paths (server side only: the client is observed)
    const edge = rx.find("traces_service_graph_request_server");
    expect(edge.map((x) => [x.attributes.client, x.attributes.server, x.count])).toEqual([["web", "shop", N]]);
    expect(rx.find("traces_service_graph_request_total")).toHaveLength(0);
  });

  it("a per-metric series cap below the template cap sends the rest to one overflow series, counted", async () => {
    const cap = 100;
    const { rx, p } = await setup({ maxSeriesPerMetric: cap });
    p.record(distinctPaths(), () => ({ server: "shop" }));
    await waitForAll(rx);

    const series = rx.find("http.server.request.duration");
    expect(series.length).toBeLessThanOrEqual(cap + 1);
    expect(series).toHaveLength(cap + 1);
    const overflow = series.filter((x) => x.attributes["otel.metric.overflow"] === true);
    expect(overflow).toHaveLength(1);
    expect(overflow[0]?.count).toBe(N - cap);
    // the overflow series carries no service.name: it stays on the agent's resource
    expect(overflow[0]?.serviceName).toBe("kalman");

    expect(p.stats().overflow.series).toBe(N - cap);
    const counter = rx.find("kalman.metrics.overflow", { metric: "http.server.request.duration", reason: "series" });
    expect(counter[0]?.value).toBe(N - cap);
  });

  it("10,000 id paths collapse to one template", async () => {
    const { rx, p } = await setup({});
    p.record(
      Array.from({ length: N }, (_, i) => rec({ endpoint: `/users/${i}/orders/${(i * 2654435761) >>> 0}`, ms: 1 })),
      () => ({ server: "shop" }),
    );
    await waitForAll(rx);
    const series = rx.find("http.server.request.duration");
    expect(series.map((x) => [x.attributes["http.route"], x.count])).toEqual([["/users/{id}/orders/{id}", N]]);
    expect(p.stats().overflow).toEqual({ series: 0, endpoints: 0 });
  });
});
