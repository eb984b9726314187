// One OTLP Resource per observed service: data points carry `service.name` as an attribute while
// they are recorded (one MeterProvider serves every service); on export it moves to the resource.
import { BoundedMap } from "@kalman/flow-aggregator";
import type { Attributes } from "@opentelemetry/api";
import { type ExportResult, ExportResultCode } from "@opentelemetry/core";
import { type Resource, resourceFromAttributes } from "@opentelemetry/resources";
import {
  type AggregationOption,
  AggregationTemporality,
  AggregationType,
  type DataPoint,
  type InstrumentType,
  type MetricData,
  type PushMetricExporter,
  type ResourceMetrics,
  type ScopeMetrics,
} from "@opentelemetry/sdk-metrics";
import type { Logger } from "../logger.js";
import { errorMessage } from "../sink.js";

/** The data point attribute that names the observed service (moved to the resource on export). */
export const SERVICE_NAME_ATTRIBUTE = "service.name";

/** What this module needs of an exporter (the official ones are typed against another sdk-metrics patch). */
export interface MetricExporterLike {
  export(metrics: ResourceMetrics, resultCallback: (result: ExportResult) => void): void;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
  selectAggregationTemporality?(instrumentType: InstrumentType): AggregationTemporality;
  selectAggregation?(instrumentType: InstrumentType): AggregationOption;
}

export interface MetricExportStats {
  /** Export requests acknowledged (one per service resource per interval). */
  exported: number;
  /** Export requests that failed. Metrics are cumulative: the next interval resends the totals. */
  failedExports: number;
  lastError?: string;
}

/** Exports in flight at once (one request per service resource). */
const PARALLEL = 4;

/**
 * Wraps an OTLP metric exporter: splits each collection into one ResourceMetrics per
 * `service.name` data point attribute (base resource + service.name, attribute removed from the
 * points) and exports each. Points without it (service graph, self metrics) keep the base resource.
 */
export class ServiceResourceExporter implements PushMetricExporter {
  private readonly resources: BoundedMap<string, Resource>;
  private readonly counts = { exported: 0, failedExports: 0 };
  private lastError: string | undefined;
  private failing = false;

  constructor(
    private readonly inner: MetricExporterLike,
    private readonly logger: Logger,
    private readonly target: string,
    maxResources = 1024,
    /** Attributes of a service's resource (process, container, K8s tags), below service.name. */
    private readonly resourceAttributesOf?: (service: string) => Attributes | undefined,
  ) {
    this.resources = new BoundedMap(Math.max(1, maxResources));
  }

  export(metrics: ResourceMetrics, resultCallback: (result: ExportResult) => void): void {
    let parts: ResourceMetrics[];
    try {
      parts = this.split(metrics);
    } catch (err) {
      resultCallback({ code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) });
      return;
    }
    void this.exportAll(parts).then(resultCallback);
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  selectAggregationTemporality(instrumentType: InstrumentType): AggregationTemporality {
    // cumulative unless the wrapped exporter says otherwise (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE)
    return this.inner.selectAggregationTemporality?.(instrumentType) ?? AggregationTemporality.CUMULATIVE;
  }

  selectAggregation(instrumentType: InstrumentType): AggregationOption {
    return this.inner.selectAggregation?.(instrumentType) ?? { type: AggregationType.DEFAULT };
  }

  stats(): MetricExportStats {
    return { ...this.counts, lastError: this.lastError };
  }

  /** Splits by service; exported for tests. */
  split(metrics: ResourceMetrics): ResourceMetrics[] {
    const byService = new Map<string | undefined, ScopeMetrics[]>();
    for (const sm of metrics.scopeMetrics) {
      const scopeParts = new Map<string | undefined, MetricData[]>();
      for (const md of sm.metrics) {
        const points = new Map<string | undefined, DataPoint<unknown>[]>();
        for (const dp of md.dataPoints as DataPoint<unknown>[]) {
          const svc = dp.attributes[SERVICE_NAME_ATTRIBUTE];
          let key: string | undefined;
          let point = dp;
          if (typeof svc === "string") {
            key = svc;
            const { [SERVICE_NAME_ATTRIBUTE]: _, ...rest } = dp.attributes;
            point = { ...dp, attributes: rest };
          }
          let list = points.get(key);
          if (!list) {
            list = [];
            points.set(key, list);
          }
          list.push(point);
        }
        for (const [key, dataPoints] of points) {
          let list = scopeParts.get(key);
          if (!list) {
            list = [];
            scopeParts.set(key, list);
          }
          list.push({ ...md, dataPoints } as MetricData);
        }
      }
      for (const [key, list] of scopeParts) {
        let scopes = byService.get(key);
        if (!scopes) {
          scopes = [];
          byService.set(key, scopes);
        }
        scopes.push({ scope: sm.scope, metrics: list });
      }
    }
    const out: ResourceMetrics[] = [];
    for (const [key, scopeMetrics] of byService) {
      out.push({
        resource: key === undefined ? metrics.resource : this.resourceFor(metrics.resource, key),
        scopeMetrics,
      });
    }
    return out;
  }

  private resourceFor(base: Resource, service: string): Resource {
    const extra = this.resourceAttributesOf?.(service);
    // tags can still change (a pod appears, processes of the service come and go): built per export
    if (extra) return resourceFromAttributes({ ...base.attributes, ...extra, [SERVICE_NAME_ATTRIBUTE]: service });
    let r = this.resources.get(service);
    if (r) return r;
    r = resourceFromAttributes({ ...base.attributes, [SERVICE_NAME_ATTRIBUTE]: service });
    this.resources.set(service, r);
    return r;
  }

  private async exportAll(parts: ResourceMetrics[]): Promise<ExportResult> {
    let firstError: Error | undefined;
    let next = 0;
    const worker = async () => {
      while (next < parts.length) {
        const part = parts[next++] as ResourceMetrics;
        const result = await new Promise<ExportResult>((resolve) => {
          try {
            this.inner.export(part, resolve);
          } catch (err) {
            resolve({ code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) });
          }
        });
        if (result.code === ExportResultCode.SUCCESS) this.counts.exported++;
        else {
          this.counts.failedExports++;
          firstError ??= result.error ?? new Error("metrics export failed");
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, parts.length) }, worker));
    if (firstError) {
      this.lastError = errorMessage(firstError);
      if (!this.failing) {
        this.failing = true;
        this.logger.warn("metrics export failed; the next interval resends cumulative totals", {
          target: this.target,
          error: this.lastError,
        });
      }
      return { code: ExportResultCode.FAILED, error: firstError };
    }
    if (this.failing) {
      this.failing = false;
      this.logger.info("metrics export recovered", { target: this.target, failedExports: this.counts.failedExports });
    }
    return { code: ExportResultCode.SUCCESS };
  }
}
