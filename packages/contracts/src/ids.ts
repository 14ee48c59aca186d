import { randomBytes, randomFillSync } from "node:crypto";

/**
 * Random bytes are drawn from a 4 KiB buffer refilled from the CSPRNG when spent:
 * a 100-job batch takes 100 ids, and one call into the CSPRNG per id cost more
 * CPU than the rest of building the job rows.
 */
const pool = Buffer.alloc(4096);
let used = pool.length;
const hex = (bytes: number): string => {
  if (used + bytes > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const out = pool.toString("hex", used, used + bytes);
  used += bytes;
  return out;
};

export const newJobId = (): string => `sim_${hex(6)}`;
export const newBatchId = (): string => `batch_${hex(6)}`;
export const newKeyId = (): string => `key_${hex(6)}`;
// A secret: its bytes come straight from the CSPRNG, never through the shared buffer.
export const newApiKey = (): string => `tp_${randomBytes(16).toString("hex")}`;
export const newRequestId = (): string => `req_${hex(8)}`;

export const JOB_ID_RE = /^sim_[0-9a-f]{12}$/;
export const BATCH_ID_RE = /^batch_[0-9a-f]{12}$/;
export const API_KEY_RE = /^tp_[0-9a-f]{32}$/;
