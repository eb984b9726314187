// SmartEncoding for metrics: attribute values become dictionary ids as they are written, a series
// is a row of int32 ids in a SeriesTable, and its histogram / counter lives in typed arrays.
// Strings come back only in collect(), once per series (cached), as an OpenTelemetry MetricProducer.
import { type Attributes, type HrTime, ValueType } from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AggregationTemporality,
  type CollectionResult,
  DataPointType,
  InstrumentType,
  type MetricData,
  type MetricProducer,
  type ScopeMetrics,
} from "@opentelemetry/sdk-metrics";
import { VERSION } from "../version.js";
import { ATTRIBUTE_KEYS, type AttributeWriter, type EndpointSource, K, RED_SCHEMA } from "./attributes.js";
import { TagDictionary, type TagDictionaryStats } from "./dictionary.js";
import { OVERFLOW_ATTRIBUTES, RED_METRICS, type RedMetricKey, SERVICE_GRAPH_METRICS } from "./semconv.js";
import { SeriesTable } from "./series-table.js";
import {
  GRAPH_CLIENT,
  GRAPH_FAILED,
  GRAPH_SERVER,
  GRAPH_TOTAL,
  type GraphInstrument,
  type MeasurementStore,
} from "./store.js";
import type { EndpointTemplater } from "./templating.js";

/** Keys whose values are numbers (the rest are strings). */
const INT_KEYS = new Set<number>([K.httpStatus, K.serverPort, K.grpcStatus]);
const GRAPH_KEYS = ["client", "server", "connection_type"] as const;
const ABSENT = -1;
/** Slots of the string -> id cache in front of the dictionary (a power of two). */
const ID_CACHE = 1024;
/** A graph series not looked up yet for a label set. */
const UNKNOWN_ROW = -2;

export interface EncodedStoreOptions {
  maxSeriesPerMetric: number;
  buckets: { default: number[]; db: number[]; serviceGraph: number[] };
  red: boolean;
  serviceGraph: boolean;
  templater: EndpointTemplater;
  /** Distinct tag strings kept (default 65536); past it values become "_other" (counted). */
  maxTags?: number;
}

/** Offsets in a series row: count, sum, min, max, start time (ms), then the bucket counts. */
const N = 0;
const SUM = 1;
const MIN = 2;
const MAX = 3;
const START = 4;
const BUCKETS = 5;

/**
 * Series values of one instrument: a histogram (count, sum, min, max, bucket counts) or a counter,
 * one row per series in one Float64Array, so a measurement touches one row, not one array per field.
 */
class Instrument {
  readonly table: SeriesTable;
  /** (maxSeries + 1) rows of `stride` values; the last row is the overflow series. */
  readonly data: Float64Array;
  readonly stride: number;
  overflowUsed = false;
  readonly attrs: (Attributes | undefined)[] = [];

  constructor(
    readonly name: string,
    readonly description: string,
    readonly unit: string,
    readonly histogram: boolean,
    readonly boundaries: number[],
    /** ATTRIBUTE_KEYS indices, or -1 - i for GRAPH_KEYS[i]. */
    readonly schema: readonly number[],
    readonly scope: string,
    maxSeries: number,
  ) {
    this.table = new SeriesTable(schema.length, maxSeries);
    const rows = maxSeries + 1;
    this.stride = BUCKETS + (histogram ? boundaries.length + 1 : 0);
    this.data = new Float64Array(rows * this.stride);
    for (let at = 0; at < this.data.length; at += this.stride) {
      this.data[at + MIN] = Number.POSITIVE_INFINITY;
      this.data[at + MAX] = Number.NEGATIVE_INFINITY;
    }
  }

  get overflowRow(): number {
    return this.table.maxSeries;
  }

  /** Records into the series of `key` (or the overflow row); false when it went to the overflow row. */
  record(key: Int32Array, durationNs: number): boolean {
    return this.recordRow(this.table.find(key), durationNs);
  }

  /**
   * Records into a row table.find() gave (-1: the overflow row): a histogram takes `durationNs` in
   * seconds, a counter adds 1. False when it went to the overflow row.
   */
  recordRow(found: number, durationNs: number): boolean {
    const value = this.histogram ? durationNs / 1e9 : 1;
    const admitted = found >= 0;
    const d = this.data;
    const base = (admitted ? found : this.overflowRow) * this.stride;
    if (!admitted) {
      if (!this.overflowUsed) {
        this.overflowUsed = true;
        d[base + START] = Date.now();
      }
    } else if (d[base + N] === 0) d[base + START] = Date.now();
    d[base + N] = (d[base + N] as number) + 1;
    d[base + SUM] = (d[base + SUM] as number) + value;
    if (this.histogram) {
      if (value < (d[base + MIN] as number)) d[base + MIN] = value;
      if (value > (d[base + MAX] as number)) d[base + MAX] = value;
      const b = this.boundaries;
      let i = 0;
      while (i < b.length && (b[i] as number) < value) i++;
      const at = base + BUCKETS + i;
      d[at] = (d[at] as number) + 1;
    }
    return admitted;
  }
}

/** Previous cumulative rows of one instrument (same layout), for delta temporality. */
type Previous = Float64Array;

/**
 * The encoded measurement store: implements MeasurementStore for the recorder and MetricProducer
 * (via producer()) for the SDK's metric readers.
 */
export class EncodedStore implements MeasurementStore, AttributeWriter {
  readonly dictionary: TagDictionary;
  readonly endpoints: EndpointSource;
  private readonly red: Partial<Record<RedMetricKey, Instrument>> = {};
  /** Slot of each ATTRIBUTE_KEYS index in the series key of each RED metric, -1 when not part of it. */
  private readonly slotsOf: Partial<Record<RedMetricKey, Int8Array>> = {};
  private readonly graphs: Instrument[] = [];
  private readonly key = new Int32Array(16);
  private readonly graphKey = new Int32Array(3);
  /**
   * The four graph instruments share their labels: the label set is looked up once per record here,
   * and each instrument's row for it is kept (series are never removed, so a row stays valid).
   */
  private readonly graphLabels: SeriesTable;
  private readonly graphRows: Int32Array[] = [];
  /** graphLabels' series of the current record's labels; -1 when that table is full (then each instrument looks up). */
  private graphLabelRow = -1;
  /** A direct-mapped cache in front of the dictionary: most tag strings repeat, and this avoids hashing them. */
  private readonly cachedStrings: (string | undefined)[] = new Array(ID_CACHE).fill(undefined);
  private readonly cachedIds = new Int32Array(ID_CACHE);
  private slots: Int8Array = new Int8Array(ATTRIBUTE_KEYS.length);
  private readonly numbers: number[] = [];
  private readonly numberIds = new Map<number, number>();

  constructor(options: EncodedStoreOptions) {
    this.dictionary = new TagDictionary(options.maxTags);
    const max = options.maxSeriesPerMetric;
    // at most 4 x max label sets are admitted somewhere; past that, instruments look labels up themselves
    this.graphLabels = new SeriesTable(3, options.serviceGraph ? 4 * max : 1);
    if (options.serviceGraph)
      for (let i = 0; i < 4; i++) this.graphRows.push(new Int32Array(4 * max).fill(UNKNOWN_ROW));
    if (options.red) {
      for (const metric of Object.keys(RED_METRICS) as RedMetricKey[]) {
        const { name, description } = RED_METRICS[metric];
        const schema = RED_SCHEMA[metric];
        const buckets = metric === "dbClient" ? options.buckets.db : options.buckets.default;
        this.red[metric] = new Instrument(name, description, "s", true, buckets, schema, "kalman", max);
        const slots = new Int8Array(ATTRIBUTE_KEYS.length).fill(-1);
        schema.forEach((k, i) => {
          slots[k] = i;
        });
        this.slotsOf[metric] = slots;
      }
    }
    if (options.serviceGraph) {
      const g = SERVICE_GRAPH_METRICS;
      const gb = options.buckets.serviceGraph;
      const schema = [-1, -2, -3];
      this.graphs[GRAPH_TOTAL] = new Instrument(
        g.requestTotal,
        "Total count of requests between two nodes.",
        "",
        false,
        [],
        schema,
        g.scope,
        max,
      );
      this.graphs[GRAPH_FAILED] = new Instrument(
        g.requestFailedTotal,
        "Total count of failed requests between two nodes.",
        "",
        false,
        [],
        schema,
        g.scope,
        max,
      );
      this.graphs[GRAPH_SERVER] = new Instrument(
        g.requestServer,
        "Time for a request between two nodes as seen from the server.",
        "s",
        true,
        gb,
        schema,
        g.scope,
        max,
      );
      this.graphs[GRAPH_CLIENT] = new Instrument(
        g.requestClient,
        "Time for a request between two nodes as seen from the client.",
        "s",
        true,
        gb,
        schema,
        g.scope,
        max,
      );
    }
    const templater = options.templater;
    this.endpoints = {
      // the templater's index templates without a cache of raw endpoints
      template: (service: string, endpoint: string): string => templater.template(service, endpoint),
      overflow() {},
    };
  }

  /** Set by the recorder: counts endpoint overflows. */
  set onEndpointOverflow(fn: () => void) {
    this.endpoints.overflow = fn;
  }

  beginRed(metric: RedMetricKey): AttributeWriter {
    this.slots = this.slotsOf[metric] as Int8Array;
    this.key.fill(ABSENT);
    return this;
  }

  str(key: number, value: string): void {
    const slot = this.slots[key] as number;
    if (slot >= 0) this.key[slot] = this.idOf(value);
  }

  /** dictionary.intern(value), answered from the cache when the slot holds the same string. */
  private idOf(value: string): number {
    const n = value.length;
    const at =
      n === 0
        ? 0
        : (Math.imul(n, 0x9e3779b1) ^
            Math.imul(value.charCodeAt(0), 31) ^
            Math.imul(value.charCodeAt(n - 1), 0x85eb) ^
            Math.imul(value.charCodeAt(n >> 1), 0xc2b2)) &
          (ID_CACHE - 1);
    if (this.cachedStrings[at] === value) return this.cachedIds[at] as number;
    const id = this.dictionary.intern(value);
    // an overflowed value is not cached: each intern() of it is counted
    if (id !== TagDictionary.OVERFLOW_ID) {
      this.cachedStrings[at] = value;
      this.cachedIds[at] = id;
    }
    return id;
  }

  int(key: number, value: number): void {
    const slot = this.slots[key] as number;
    if (slot < 0) return;
    this.key[slot] = (value | 0) === value && value >= 0 ? value : -2 - this.numberId(value);
  }

  commitRed(metric: RedMetricKey, durationNs: number): boolean {
    return (this.red[metric] as Instrument).record(this.key, durationNs);
  }

  beginGraph(client: string, server: string, connectionType: string): void {
    const k = this.graphKey;
    k[0] = this.idOf(client);
    k[1] = this.idOf(server);
    k[2] = this.idOf(connectionType);
    this.graphLabelRow = this.graphLabels.find(k);
  }

  graph(instrument: GraphInstrument, durationNs: number): boolean {
    const inst = this.graphs[instrument] as Instrument;
    const labels = this.graphLabelRow;
    if (labels < 0) return inst.record(this.graphKey, durationNs);
    const rows = this.graphRows[instrument] as Int32Array;
    let row = rows[labels] as number;
    if (row === UNKNOWN_ROW) {
      // the instrument's own table admits the label set (or not: -1, for good, as its table is full)
      row = inst.table.find(this.graphKey);
      rows[labels] = row;
    }
    return inst.recordRow(row, durationNs);
  }

  seriesCount(): number {
    let n = 0;
    for (const inst of this.instruments()) n += inst.table.size;
    return n;
  }

  dictionaryStats(): TagDictionaryStats {
    return this.dictionary.stats();
  }

  /**
   * A MetricProducer for one metric reader (each reader gets its own: delta temporality keeps the
   * previous totals per reader). `temporalityOf` is the reader's exporter preference (default cumulative).
   */
  producer(temporalityOf?: (type: InstrumentType) => AggregationTemporality): MetricProducer {
    const previous = new Map<Instrument, Previous>();
    let lastCollect: HrTime = msToHrTime(Date.now());
    return {
      collect: async (): Promise<CollectionResult> => {
        const now = Date.now();
        const end = msToHrTime(now);
        const byScope = new Map<string, MetricData[]>();
        for (const inst of this.instruments()) {
          const type = inst.histogram ? InstrumentType.HISTOGRAM : InstrumentType.COUNTER;
          const temporality = temporalityOf?.(type) ?? AggregationTemporality.CUMULATIVE;
          const md = this.metricData(inst, temporality, end, lastCollect, previous);
          if (!md) continue;
          let list = byScope.get(inst.scope);
          if (!list) {
            list = [];
            byScope.set(inst.scope, list);
          }
          list.push(md);
        }
        lastCollect = end;
        const scopeMetrics: ScopeMetrics[] = [];
        for (const [name, metrics] of byScope)
          scopeMetrics.push({ scope: name === "kalman" ? { name, version: VERSION } : { name }, metrics });
        return { resourceMetrics: { resource: EMPTY_RESOURCE, scopeMetrics }, errors: [] };
      },
    };
  }

  private *instruments(): Iterable<Instrument> {
    for (const metric of Object.keys(RED_METRICS) as RedMetricKey[]) {
      const inst = this.red[metric];
      if (inst) yield inst;
    }
    for (const g of this.graphs) yield g;
  }

  private metricData(
    inst: Instrument,
    temporality: AggregationTemporality,
    end: HrTime,
    lastCollect: HrTime,
    previous: Map<Instrument, Previous>,
  ): MetricData | undefined {
    const rows = inst.table.size;
    const delta = temporality === AggregationTemporality.DELTA;
    const nb = inst.boundaries.length + 1;
    let prev: Previous | undefined;
    if (delta) {
      prev = previous.get(inst);
      if (!prev) {
        prev = new Float64Array(inst.data.length);
        previous.set(inst, prev);
      }
    }
    const d = inst.data;
    const dataPoints: Array<{ attributes: Attributes; startTime: HrTime; endTime: HrTime; value: unknown }> = [];
    const emit = (row: number, attributes: Attributes) => {
      const base = row * inst.stride;
      const n = (d[base + N] as number) - (prev ? (prev[base + N] as number) : 0);
      if (n === 0 || (!delta && d[base + N] === 0)) return;
      const startTime = delta ? lastCollect : msToHrTime(d[base + START] as number);
      const sum = (d[base + SUM] as number) - (prev ? (prev[base + SUM] as number) : 0);
      if (inst.histogram) {
        const counts: number[] = new Array(nb);
        for (let i = 0; i < nb; i++) {
          const at = base + BUCKETS + i;
          counts[i] = (d[at] as number) - (prev ? (prev[at] as number) : 0);
          if (prev) prev[at] = d[at] as number;
        }
        dataPoints.push({
          attributes,
          startTime,
          endTime: end,
          value: {
            // per-interval min/max are not kept: a delta point leaves them out
            min: delta ? undefined : d[base + MIN],
            max: delta ? undefined : d[base + MAX],
            sum,
            buckets: { boundaries: inst.boundaries, counts },
            count: n,
          },
        });
      } else dataPoints.push({ attributes, startTime, endTime: end, value: sum });
      if (prev) {
        prev[base + N] = d[base + N] as number;
        prev[base + SUM] = d[base + SUM] as number;
      }
    };
    for (let row = 0; row < rows; row++) emit(row, this.attributesOf(inst, row));
    if (inst.overflowUsed) emit(inst.overflowRow, OVERFLOW_ATTRIBUTES);
    if (!dataPoints.length) return undefined;
    const descriptor = {
      name: inst.name,
      description: inst.description,
      unit: inst.unit,
      type: inst.histogram ? InstrumentType.HISTOGRAM : InstrumentType.COUNTER,
      valueType: ValueType.DOUBLE,
      ...(inst.histogram ? { advice: { explicitBucketBoundaries: inst.boundaries } } : {}),
    };
    if (inst.histogram)
      return {
        descriptor,
        aggregationTemporality: temporality,
        dataPointType: DataPointType.HISTOGRAM,
        dataPoints,
      } as MetricData;
    return {
      descriptor,
      aggregationTemporality: temporality,
      dataPointType: DataPointType.SUM,
      isMonotonic: true,
      dataPoints,
    } as MetricData;
  }

  /** The attributes of a series, resolved from its ids once and kept. */
  private attributesOf(inst: Instrument, row: number): Attributes {
    const hit = inst.attrs[row];
    if (hit) return hit;
    const a: Attributes = {};
    inst.schema.forEach((k, i) => {
      const v = inst.table.keyAt(row, i);
      if (k < 0) {
        a[GRAPH_KEYS[-1 - k] as string] = this.dictionary.resolve(v);
        return;
      }
      if (v === ABSENT) return;
      const name = ATTRIBUTE_KEYS[k] as string;
      if (INT_KEYS.has(k)) a[name] = v >= 0 ? v : this.numbers[-2 - v];
      else a[name] = this.dictionary.resolve(v);
    });
    inst.attrs[row] = a;
    return a;
  }

  private numberId(value: number): number {
    let id = this.numberIds.get(value);
    if (id === undefined) {
      // bounded like the dictionary: past the cap, the number shares the last slot's id
      if (this.numbers.length >= 4096) return this.numbers.length - 1;
      id = this.numbers.length;
      this.numbers.push(value);
      this.numberIds.set(value, id);
    }
    return id;
  }
}

const EMPTY_RESOURCE = resourceFromAttributes({});

function msToHrTime(ms: number): HrTime {
  const s = Math.floor(ms / 1000);
  return [s, Math.round((ms - s * 1000) * 1e6)];
}
