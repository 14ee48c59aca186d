import { randomBytes } from "node:crypto";

const hex = (bytes: number) => randomBytes(bytes).toString("hex");

export const newJobId = (): string => `sim_${hex(6)}`;
export const newBatchId = (): string => `batch_${hex(6)}`;
export const newKeyId = (): string => `key_${hex(6)}`;
export const newApiKey = (): string => `tp_${hex(16)}`;
export const newRequestId = (): string => `req_${hex(8)}`;

export const JOB_ID_RE = /^sim_[0-9a-f]{12}$/;
export const BATCH_ID_RE = /^batch_[0-9a-f]{12}$/;
export const API_KEY_RE = /^tp_[0-9a-f]{32}$/;
