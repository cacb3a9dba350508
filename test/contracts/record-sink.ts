// The checklist every RecordSink runs (test/contracts/record-sinks.test.ts): what the prediction log relies on.
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/metrics/registry.js';
import type { RecordSink } from '../../src/record/sinks/sink.js';

/**
 * Builds the sink under test. `kept` reads back what it wrote, in order (null: the sink keeps nothing by design);
 * `cleanup` removes what the factory made.
 */
export type RecordSinkFactory = (metrics: Metrics) => Promise<{ sink: RecordSink; kept: () => Promise<object[] | null>; cleanup?: () => Promise<void> }>;

async function counted(metrics: Metrics, series: string, sink: string): Promise<number> {
  const metric = await metrics.registry.getSingleMetric(series)?.get();
  return (metric?.values ?? []).filter((v) => v.labels['sink'] === sink).reduce((sum, v) => sum + v.value, 0);
}

/** Registers the RecordSink contract for one implementation. */
export function describeRecordSink(name: string, make: RecordSinkFactory): void {
  describe(`RecordSink contract: ${name}`, () => {
    async function withSink(run: (sink: RecordSink, kept: () => Promise<object[] | null>, metrics: Metrics) => Promise<void>): Promise<void> {
      const metrics = new Metrics({ defaultMetrics: false });
      const { sink, kept, cleanup } = await make(metrics);
      try {
        await run(sink, kept, metrics);
      } finally {
        await sink.close();
        await cleanup?.();
      }
    }

    it('has a name for the sink label, and starts with nothing buffered', async () => {
      await withSink(async (sink) => {
        expect(sink.name).toMatch(/^[a-z]+$/);
        expect(sink.bufferedBytes).toBe(0);
      });
    });

    it('answers write at once with a boolean (it never makes the recorder wait)', async () => {
      await withSink(async (sink) => {
        expect(typeof sink.write({ type: 'served', n: 0 })).toBe('boolean');
      });
    });

    it('keeps every accepted record exactly once and in order, and has nothing buffered after flush', async () => {
      await withSink(async (sink, kept) => {
        const records = Array.from({ length: 50 }, (_, n) => ({ type: 'served', n, text: 'é'.repeat(n) }));
        const accepted = records.filter((record) => sink.write(record));
        await sink.flush();
        expect(sink.bufferedBytes).toBe(0);
        const out = await kept();
        if (out !== null) expect(out).toEqual(accepted);
      });
    });

    it('counts what it kept in switchyard_records_written_total and every refusal in switchyard_pairs_dropped_total', async () => {
      await withSink(async (sink, kept, metrics) => {
        let refused = 0;
        for (let n = 0; n < 20; n++) if (!sink.write({ type: 'served', n })) refused += 1;
        await sink.flush();
        const out = await kept();
        if (out === null) return;
        expect(await counted(metrics, 'switchyard_records_written_total', sink.name)).toBe(out.length);
        expect(await counted(metrics, 'switchyard_pairs_dropped_total', sink.name)).toBe(refused);
      });
    });

    it('closes after a flush without losing the flushed records', async () => {
      await withSink(async (sink, kept) => {
        const accepted = [{ type: 'served', n: 1 }, { type: 'served', n: 2 }].filter((record) => sink.write(record));
        await sink.flush();
        await sink.close();
        const out = await kept();
        if (out !== null) expect(out).toEqual(accepted);
      });
    });
  });
}
