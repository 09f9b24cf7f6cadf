/**
 * LoadEvents: NDJSON or CSV text in, events appended to the built-in analytics source, all or
 * nothing. Memory stays bounded: text is parsed as it arrives and handed on in batches, with
 * backpressure from the store (a COPY that is not keeping up pauses the stream).
 */
import type { EventRow, EventsStore } from "../store/events-store.js";
import { type EventFormat, EventParser } from "./event-parser.js";
import type { InvalidEntry } from "./import-parser.js";

/** Rows handed to the store at a time. */
const BATCH_ROWS = 5_000;

/** What a load did. */
export interface LoadEventsResult {
  /** Events appended. */
  loaded: number;
  /** Lines rejected (skipped). */
  rejected: number;
  /** The first 100 rejected lines, with 1-based line numbers and reasons. */
  rejectedLines: InvalidEntry[];
}

/** Loads events. */
export class EventLoader {
  constructor(private readonly store: EventsStore) {}

  /** Parses `chunks` (consecutive pieces of one text) as `format` and appends the valid events in one transaction. */
  async loadEvents(format: EventFormat, chunks: AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<LoadEventsResult> {
    const parser = new EventParser(format);
    const batches = async function* (): AsyncGenerator<EventRow[]> {
      let batch: EventRow[] = [];
      for await (const chunk of chunks) {
        for (const row of parser.push(chunk)) batch.push(row);
        if (batch.length >= BATCH_ROWS) {
          yield batch;
          batch = [];
        }
      }
      for (const row of parser.finish()) batch.push(row);
      if (batch.length > 0) yield batch;
    };
    const loaded = await this.store.append(batches(), signal);
    return { loaded, rejected: parser.rejected, rejectedLines: parser.rejectedLines };
  }
}
