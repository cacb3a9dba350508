// NDJSON file sink: batched asynchronous appends, size/time rotation with gzip, fsync on rotate and close, bounded and lossy, whole lines only.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Metrics } from '../../metrics/registry.js';
import { dropCounter, type RecordSink } from './sink.js';

/** Settings of the NDJSON sink. */
export interface NdjsonSinkOptions {
  dir: string;
  /** File name prefix, e.g. "pairs" → pairs-<timestamp>.ndjson. */
  prefix?: string;
  /** Rotate when the active file would exceed this many bytes. */
  maxFileBytes?: number;
  /** Rotate when the active file is older than this. */
  rotateMs?: number;
  /**
   * Bytes allowed to wait in memory, the batch being written included (the sink budget, budgets.ts); beyond it records
   * are dropped and counted as memory_budget (never blocking serving).
   */
  maxQueueBytes?: number;
  /** Gzip rotated files in the background. */
  gzip?: boolean;
  /** After a disk error, wait this long before trying to open the file again. */
  retryMs?: number;
  /**
   * How long records gather in memory before a write (unless `lingerBytes` are queued first). One write per
   * linger instead of one per event-loop turn: fewer syscalls, promises and short-lived buffers on the serving
   * thread (measured as the primary's p99 in the shadow bench).
   */
  lingerMs?: number;
  /** Queued bytes that start a write before the linger is over. */
  lingerBytes?: number;
}

/**
 * What a crash loses (pino docs/asynchronous.md is the model): records still queued in memory (at most
 * maxQueueBytes) and records written but not yet fsynced. Rotation and close fsync.
 *
 * What a full or failing disk does: a batch is written whole or its torn last line is cut off again (the lines that
 * made it whole count as written, the rest as disk_error), so the counters match the file. The file stays open across
 * failures (no new, empty file per retry), batches arriving within `retryMs` of a failure are dropped and counted, and
 * the next batch after that tries again: the log resumes by itself once space returns.
 */
export class NdjsonSink implements RecordSink {
  readonly name = 'ndjson';
  readonly #options: Required<NdjsonSinkOptions>;
  readonly #counts;
  #queue: string[] = [];
  #queueBytes = 0;
  /** Bytes of the batch being written: still in memory, so still counted against maxQueueBytes. */
  #writingBytes = 0;
  #file: FileHandle | null = null;
  #filePath = '';
  /** Bytes of whole lines in the active file. */
  #fileBytes = 0;
  /** Set when a torn line could not be cut off yet: the file is truncated to #fileBytes before anything else. */
  #torn = false;
  #openedAt = 0;
  #writing: Promise<void> | null = null;
  #failedAt = 0;
  #closed = false;
  #background = new Set<Promise<void>>();
  #sequence = 0;
  /** Ends the current linger early (flush, close, or a full batch). */
  #endLinger: (() => void) | null = null;

  constructor(metrics: Metrics, options: NdjsonSinkOptions) {
    this.#options = {
      prefix: 'pairs',
      maxFileBytes: 64 * 1024 * 1024,
      rotateMs: 3_600_000,
      maxQueueBytes: 8 * 1024 * 1024,
      gzip: true,
      retryMs: 1_000,
      lingerMs: 50,
      lingerBytes: 256 * 1024,
      ...(Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as NdjsonSinkOptions),
    };
    this.#counts = dropCounter(metrics, 'ndjson');
  }

  /** The file currently written (empty until the first write). */
  get activeFile(): string {
    return this.#filePath;
  }

  get bufferedBytes(): number {
    return this.#queueBytes + this.#writingBytes;
  }

  write(record: object): boolean {
    if (this.#closed) {
      this.#counts.dropped('closed');
      return false;
    }
    const line = `${JSON.stringify(record)}\n`;
    if (this.#queueBytes + this.#writingBytes + line.length > this.#options.maxQueueBytes) {
      this.#counts.dropped('memory_budget');
      return false;
    }
    this.#queue.push(line);
    this.#queueBytes += line.length;
    // One write in flight at a time; records arriving meanwhile form the next batch.
    this.#writing ??= this.#drain();
    if (this.#queueBytes >= this.#options.lingerBytes) this.#endLinger?.();
    return true;
  }

  async #drain(): Promise<void> {
    // Let the records of the next `lingerMs` join the batch before writing.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.#endLinger?.(), this.#options.lingerMs);
      this.#endLinger = () => {
        clearTimeout(timer);
        this.#endLinger = null;
        resolve();
      };
    });
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue;
        this.#writingBytes = this.#queueBytes;
        this.#queue = [];
        this.#queueBytes = 0;
        await this.#writeBatch(batch);
        this.#writingBytes = 0;
      }
    } finally {
      this.#writingBytes = 0;
      this.#writing = null;
    }
  }

  async #writeBatch(batch: string[]): Promise<void> {
    if (this.#failedAt !== 0 && Date.now() - this.#failedAt < this.#options.retryMs) {
      this.#counts.dropped('disk_error', batch.length);
      return;
    }
    const data = Buffer.from(batch.join(''), 'utf8');
    let file: FileHandle;
    try {
      if (this.#torn) await this.#cutTornLine();
      if (this.#file !== null && this.#fileBytes > 0 && (this.#fileBytes + data.length > this.#options.maxFileBytes || Date.now() - this.#openedAt > this.#options.rotateMs)) {
        await this.#rotate();
      }
      file = this.#file ?? (await this.#open());
    } catch {
      // Missing, unwritable or replaced directory: nothing was created; count the loss and retry later.
      this.#fail(batch.length);
      return;
    }
    let written = 0;
    try {
      // A write may take only part of the data (a disk filling up, a file size limit): go on until all of it is
      // written or the disk refuses.
      while (written < data.length) {
        const { bytesWritten } = await file.write(data, written, data.length - written, null);
        if (bytesWritten <= 0) throw new Error('the disk accepted no bytes');
        written += bytesWritten;
      }
    } catch {
      // Keep the lines that made it whole and cut the torn one off, so the file holds only whole lines and the
      // counters match it. The file stays open: the next retry appends to it rather than creating another.
      const whole = written === 0 ? 0 : data.lastIndexOf(10, written - 1) + 1;
      let lines = 0;
      for (let i = data.indexOf(10); i !== -1 && i < whole; i = data.indexOf(10, i + 1)) lines++;
      this.#fileBytes += whole;
      if (written > whole) {
        this.#torn = true;
        await this.#cutTornLine().catch(() => undefined);
      }
      if (lines > 0) this.#counts.written(lines);
      this.#fail(batch.length - lines);
      return;
    }
    this.#fileBytes += data.length;
    this.#failedAt = 0;
    this.#counts.written(batch.length);
  }

  #fail(lost: number): void {
    this.#failedAt = Date.now();
    if (lost > 0) this.#counts.dropped('disk_error', lost);
  }

  /** Truncates the active file to its whole lines (after a short write). */
  async #cutTornLine(): Promise<void> {
    await this.#file!.truncate(this.#fileBytes);
    this.#torn = false;
  }

  async #open(): Promise<FileHandle> {
    await mkdir(this.#options.dir, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const filePath = path.join(this.#options.dir, `${this.#options.prefix}-${stamp}-${process.pid}-${this.#sequence++}.ndjson`);
    this.#file = await open(filePath, 'a');
    this.#filePath = filePath;
    this.#fileBytes = 0;
    this.#torn = false;
    this.#openedAt = Date.now();
    return this.#file;
  }

  async #rotate(): Promise<void> {
    const file = this.#file!;
    const closedPath = this.#filePath;
    this.#file = null;
    // A failed fsync or close must not leak the handle; the data was appended and stays in the file.
    await file.sync().catch(() => undefined);
    await file.close().catch(() => undefined);
    if (this.#options.gzip) {
      const job = gzipFile(closedPath).catch(() => undefined);
      this.#background.add(job);
      void job.finally(() => this.#background.delete(job));
    }
  }

  async flush(): Promise<void> {
    this.#endLinger?.();
    while (this.#writing) await this.#writing;
    if (this.#queue.length > 0) {
      this.#writing = this.#drain();
      await this.#writing;
    }
    await this.#file?.sync().catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.flush();
    this.#closed = true;
    const file = this.#file;
    this.#file = null;
    if (file) {
      if (this.#torn) await file.truncate(this.#fileBytes).catch(() => undefined);
      await file.sync().catch(() => undefined);
      await file.close().catch(() => undefined);
      // A file that never got a whole line (the disk refused every write) is not left behind.
      if (this.#fileBytes === 0) await unlink(this.#filePath).catch(() => undefined);
    }
    await Promise.all(this.#background);
  }
}

/** Compresses a rotated file to .gz next to it and removes the original once the copy is complete. */
async function gzipFile(file: string): Promise<void> {
  const target = `${file}.gz`;
  const partial = `${target}.partial`;
  try {
    await pipeline(createReadStream(file), createGzip(), createWriteStream(partial));
    await rename(partial, target);
  } catch (err) {
    // A full disk fails the copy: the original stays, uncompressed, and no partial copy is left behind.
    await unlink(partial).catch(() => undefined);
    throw err;
  }
  await unlink(file);
}
