import { randomBytes } from "node:crypto";
import type { ServiceIdentity, Span } from "@kalman/span-correlator";

export const newTraceId = (): string => randomBytes(16).toString("hex");
export const newSpanId = (): string => randomBytes(8).toString("hex");

export function service(name: string, attributes: ServiceIdentity["attributes"] = {}): ServiceIdentity {
  return { serviceName: name, attributes };
}

const T0 = 1_760_000_000;

/** A finished span with fresh ids unless given. */
export function makeSpan(over: Partial<Span> & { service: ServiceIdentity }): Span {
  return {
    traceId: newTraceId(),
    spanId: newSpanId(),
    name: "GET /",
    kind: "server",
    start: [T0, 1_000],
    end: [T0, 2_501_000],
    durationNs: 2_500_000,
    status: { code: "unset" },
    attributes: {},
    ...over,
  };
}

/** n root spans of one service, named `${prefix} i`. */
export function manySpans(n: number, svc: ServiceIdentity, prefix = "span"): Span[] {
  const out: Span[] = [];
  for (let i = 0; i < n; i++) out.push(makeSpan({ service: svc, name: `${prefix} ${i}`, attributes: { i } }));
  return out;
}
