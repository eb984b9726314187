/** W3C trace context: "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>". */
export interface TraceParent {
  traceId: string;
  spanId: string;
  sampled: boolean;
}

const HEX = /^[0-9a-f]+$/;

export function parseTraceparent(value: string): TraceParent | undefined {
  const v = value.trim().toLowerCase();
  if (v.length < 55) return undefined;
  const [version, traceId, spanId, flags] = v.split("-");
  if (!version || !traceId || !spanId || !flags) return undefined;
  if (version.length !== 2 || version === "ff" || traceId.length !== 32 || spanId.length !== 16 || flags.length !== 2) {
    return undefined;
  }
  if (!HEX.test(version + traceId + spanId + flags)) return undefined;
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return { traceId, spanId, sampled: (Number.parseInt(flags, 16) & 1) === 1 };
}
