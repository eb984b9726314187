// Where the recorder's measurements go: SDK instruments keyed by attribute objects (strings), or
// the encoded store (dictionary ids, typed arrays). Both see the same attribute writes.

import type { AttributeWriter, EndpointSource } from "./attributes.js";
import type { RedMetricKey } from "./semconv.js";

/** The four service graph instruments. */
export const GRAPH_TOTAL = 0;
export const GRAPH_FAILED = 1;
export const GRAPH_SERVER = 2;
export const GRAPH_CLIENT = 3;
export type GraphInstrument = 0 | 1 | 2 | 3;

export interface MeasurementStore {
  /** Templates endpoints (bounded per service) for the RED attributes. */
  readonly endpoints: EndpointSource;
  /** Starts a RED measurement: its attributes are written to the returned writer, then commitRed(). */
  beginRed(metric: RedMetricKey): AttributeWriter;
  /**
   * Records `durationNs` (exported in seconds) with the attributes written since beginRed(); false
   * when the series cap sent it to the overflow series. Nanoseconds, as the record has them: the
   * division happens where the value is stored, so no number is boxed on the way.
   */
  commitRed(metric: RedMetricKey, durationNs: number): boolean;
  /** Sets the labels of the following graph() measurements. */
  beginGraph(client: string, server: string, connectionType: string): void;
  /** Adds 1 (counters) or records `durationNs` in seconds (histograms); false when it went to the overflow series. */
  graph(instrument: GraphInstrument, durationNs: number): boolean;
  /** Distinct series admitted so far, over all metrics. */
  seriesCount(): number;
}
