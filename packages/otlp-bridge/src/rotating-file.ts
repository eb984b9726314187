import { type FileHandle, mkdir, open, rename, unlink } from "node:fs/promises";

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

  async append(line: Buffer): Promise<void> {
    try {
      let fh = await this.handle();
      if (this.size > 0 && this.size + line.length > this.maxBytes) {
        await this.rotate();
        fh = await this.handle();
      }
      await fh.appendFile(line);
      this.size += line.length;
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
