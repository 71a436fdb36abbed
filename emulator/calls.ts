// What reached the emulator: counters by action and by caller, plus a bounded log. Only non-secret
// fields are kept (AccessKeyIds and ARNs, never secrets, signatures or tokens).
import type { Product } from './faults.js';

export interface CallRecord {
  seq: number;
  /** Gateway (wall) time the request arrived, epoch ms. */
  at: number;
  /** `registry-auth`: the registry token service (not subject to injected faults). */
  product: Product | 'registry-auth' | 'unknown';
  action: string;
  method: string;
  /** As presented (unverified). */
  accessKeyId?: string;
  /** ARN of the verified caller. */
  principal?: string;
  /** Undefined while in flight (or hung). */
  status?: number;
  /** Error code of a failed call. */
  code?: string;
  /** Kind of the injected fault that answered, if any. */
  fault?: string;
}

export interface CallFilter {
  product?: Product | 'registry-auth';
  action?: string;
  /** Matches the presented AccessKeyId or the verified principal ARN. */
  caller?: string;
  /** Only calls that ended with this error code ('' for successes). */
  code?: string;
}

export class CallLog {
  private records: CallRecord[] = [];
  private seq = 0;

  constructor(private readonly maxRecords = 10_000) {}

  start(entry: Omit<CallRecord, 'seq'>): CallRecord {
    const record: CallRecord = { seq: ++this.seq, ...entry };
    this.records.push(record);
    if (this.records.length > this.maxRecords) this.records.splice(0, this.records.length - this.maxRecords);
    return record;
  }

  /** Total calls since the last reset (not bounded by the log size). */
  get total(): number {
    return this.seq;
  }

  /** The retained log, oldest first (a copy). */
  list(filter: CallFilter = {}): CallRecord[] {
    return this.records.filter((r) => matches(r, filter)).map((r) => ({ ...r }));
  }

  count(filter: CallFilter = {}): number {
    return this.records.reduce((n, r) => n + (matches(r, filter) ? 1 : 0), 0);
  }

  byAction(): Record<string, number> {
    return tally(this.records, (r) => r.action);
  }

  /** Keyed by presented AccessKeyId ('anonymous' when none). */
  byCaller(): Record<string, number> {
    return tally(this.records, (r) => r.accessKeyId ?? 'anonymous');
  }

  reset(): void {
    this.records = [];
    this.seq = 0;
  }
}

function matches(r: CallRecord, f: CallFilter): boolean {
  return (
    (f.product === undefined || r.product === f.product) &&
    (f.action === undefined || r.action === f.action) &&
    (f.caller === undefined || r.accessKeyId === f.caller || r.principal === f.caller) &&
    (f.code === undefined || (r.code ?? '') === f.code)
  );
}

function tally(records: CallRecord[], key: (r: CallRecord) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) out[key(r)] = (out[key(r)] ?? 0) + 1;
  return out;
}
