import { type FileHandle, mkdir, open, rename, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { SendResult } from "./batch-loop.js";

/** Where and how big the embedded OTLP-JSON files are. */
export interface JsonFileOptions {
  /** Data directory (default "kalman-data", relative to the working directory). Created when missing. */
  dir?: string;
  /** File name inside dir (default: traces.jsonl / logs.jsonl). */
  fileName?: string;
  /** Rotate before a write would take the file past this size (default 64 MiB). */
  maxBytes?: number;
  /** Rotated files kept: name.1 (newest) ... name.N (oldest). Default 5. */
  maxFiles?: number;
}

const NEWLINE = Buffer.from("\n");

/** One serialized OTLP request per line (the Collector's file exporter format), size-rotated. */
export class JsonLinesFile {
  readonly dir: string;
  readonly path: string;
  private readonly file: RotatingFile;

  constructor(options: JsonFileOptions, defaultName: string) {
    this.dir = resolve(options.dir ?? "kalman-data");
    this.path = join(this.dir, options.fileName ?? defaultName);
    this.file = new RotatingFile(
      this.dir,
      this.path,
      Math.max(1, options.maxBytes ?? 64 * 1024 * 1024),
      Math.max(0, Math.floor(options.maxFiles ?? 5)),
    );
  }

  /** Appends one JSON request; a failed write (ENOSPC, EACCES) is retryable and the file reopens next time. */
  async write(json: Uint8Array | undefined): Promise<SendResult> {
    if (!json || json.length === 0) return { ok: true };
    try {
      await this.file.append([json, NEWLINE]);
      return { ok: true };
    } catch (error) {
      return { ok: false, error, retryable: true };
    }
  }

  sync(): Promise<void> {
    return this.file.sync();
  }

  close(): Promise<void> {
    return this.file.close();
  }
}

/**
 * Append-only file rotated before a write that would take it past maxBytes: f -> f.1 -> ... -> f.maxFiles.
 */
export class RotatingFile {
  private fh: FileHandle | undefined;
  private size = 0;

  constructor(
    private readonly dir: string,
    readonly path: string,
    private readonly maxBytes: number,
    private readonly maxFiles: number,
  ) {}

  /** Appends the pieces as one write (no copy into one buffer first). */
  async append(pieces: readonly Uint8Array[]): Promise<void> {
    let length = 0;
    for (const p of pieces) length += p.length;
    try {
      let fh = await this.handle();
      if (this.size > 0 && this.size + length > this.maxBytes) {
        await this.rotate();
        fh = await this.handle();
      }
      let written = (await fh.writev(pieces as Uint8Array[])).bytesWritten;
      if (written < length) {
        // a short write (a regular file only does that when nearly full): the rest, or the error
        const rest = Buffer.concat(pieces as Uint8Array[]).subarray(written);
        for (let off = 0; off < rest.length; ) {
          const n = (await fh.write(rest, off)).bytesWritten;
          if (n === 0) throw new Error(`no progress writing ${this.path}`);
          off += n;
        }
        written = length;
      }
      this.size += written;
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  async sync(): Promise<void> {
    await this.fh?.datasync();
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    if (fh) {
      try {
        await fh.close();
      } catch {
        // already closed or gone
      }
    }
  }

  private async handle(): Promise<FileHandle> {
    if (this.fh) return this.fh;
    await mkdir(this.dir, { recursive: true });
    const fh = await open(this.path, "a");
    try {
      this.size = (await fh.stat()).size;
    } catch {
      this.size = 0;
    }
    this.fh = fh;
    return fh;
  }

  private async rotate(): Promise<void> {
    await this.close();
    if (this.maxFiles === 0) await ignoreEnoent(unlink(this.path));
    else {
      for (let i = this.maxFiles - 1; i >= 1; i--)
        await ignoreEnoent(rename(`${this.path}.${i}`, `${this.path}.${i + 1}`));
      await ignoreEnoent(rename(this.path, `${this.path}.1`));
    }
    this.size = 0;
  }
}

async function ignoreEnoent(p: Promise<void>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}
