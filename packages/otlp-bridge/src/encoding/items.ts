import type { InstrumentationScope } from "@opentelemetry/core";
import type { Resource } from "@opentelemetry/resources";

/**
 * A span or log record encoded when it was queued (protobuf: the length-prefixed message; JSON: the
 * object's text), with the resource and scope a request groups it under. Queues hold these instead of
 * object graphs: bytes the garbage collector does not have to trace or copy while they wait.
 */
export interface EncodedItem {
  readonly resource: Resource;
  readonly instrumentationScope: InstrumentationScope;
  readonly bytes: Uint8Array;
}

const SLAB_BYTES = 1 << 20;

/**
 * Copies items' bytes into shared 1 MiB slabs (one allocation per MiB, not one per item). A slab is
 * freed when the last item in it is; an item bigger than a quarter slab gets its own buffer.
 */
export class ItemSlab {
  private buf = new Uint8Array(SLAB_BYTES);
  private pos = 0;

  copy(src: Uint8Array, length: number): Uint8Array {
    if (length > SLAB_BYTES / 4) return src.slice(0, length);
    if (this.pos + length > this.buf.length) {
      this.buf = new Uint8Array(SLAB_BYTES);
      this.pos = 0;
    }
    const start = this.pos;
    this.buf.set(src.subarray(0, length), start);
    this.pos += length;
    return this.buf.subarray(start, this.pos);
  }
}
