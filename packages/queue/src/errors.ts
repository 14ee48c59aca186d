import ClusterAllFailedError from "ioredis/built/errors/ClusterAllFailedError.js";
import { MaxRetriesPerRequestError } from "ioredis/built/errors/index.js";
import { CONNECTION_CLOSED_ERROR_MSG } from "ioredis/built/utils/index.js";

/**
 * How a Redis outage is told apart from a Redis answer (a ReplyError, a bug).
 *
 * What ioredis raises when the server is gone:
 * - `MaxRetriesPerRequestError` (an `AbortError`) when a command gave up waiting for a connection;
 * - Node socket errors (`code` ECONNREFUSED, ETIMEDOUT, ...) on connect;
 * - two plain `Error`s it has no class for, recognised by the exact sentinel
 *   message ioredis gives them (not by a pattern): the connection closed under
 *   a pending command, and a command refused while offline with
 *   `enableOfflineQueue: false` (the API's producer clients).
 * And from a Cluster client (REDIS_CLUSTER_NODES): `ClusterAllFailedError` when
 * no node answered for the slot map, and two more sentinel messages: no seed
 * node reachable, and a command refused while the Cluster is not ready.
 * BullMQ runs its commands on ioredis, so its errors are these.
 */
const OFFLINE_QUEUE_DISABLED_MSG = "Stream isn't writeable and enableOfflineQueue options is false";
const CLUSTER_NOT_READY_MSG = "Cluster isn't ready and enableOfflineQueue options is false";
const NO_STARTUP_NODE_MSG = "None of startup nodes is available";
const SENTINEL_MESSAGES = new Set([CONNECTION_CLOSED_ERROR_MSG, OFFLINE_QUEUE_DISABLED_MSG, CLUSTER_NOT_READY_MSG, NO_STARTUP_NODE_MSG]);
const SOCKET_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EPIPE", "EAI_AGAIN"]);

/** True when `err` says Redis is down (a 503); a Redis reply error or any other error is false. */
export function isRedisUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e != null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof MaxRetriesPerRequestError || e instanceof ClusterAllFailedError) return true;
    if (!(e instanceof Error)) return false;
    if (e.constructor === Error && SENTINEL_MESSAGES.has(e.message)) return true;
    const sys = e as { code?: unknown; syscall?: unknown };
    if (typeof sys.code === "string" && typeof sys.syscall === "string" && SOCKET_CODES.has(sys.code)) return true;
  }
  return false;
}
