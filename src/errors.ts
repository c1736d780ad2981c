/**
 * One error class per failure family, each with a stable `code` that callers and
 * tests can switch on. A CLI prints `iotupd: <message>` and exits non-zero; it never
 * prints a stack trace for a user mistake.
 */

/**
 * Every code an iotupd error carries. Compare `err.code` with these rather than with string
 * literals: a test checks that every code thrown in src/ is listed here.
 */
export const ErrorCode = {
  ABORTED: 'ERR_ABORTED',
  AGENT: 'ERR_AGENT',
  AUTH: 'ERR_AUTH',
  BAD_BIND_ADDRESS: 'ERR_BAD_BIND_ADDRESS',
  BAD_BUFFER_SIZE: 'ERR_BAD_BUFFER_SIZE',
  BAD_GROUP: 'ERR_BAD_GROUP',
  BAD_HOP_LIMIT: 'ERR_BAD_HOP_LIMIT',
  BAD_PORT: 'ERR_BAD_PORT',
  BAD_QUEUE_LIMIT: 'ERR_BAD_QUEUE_LIMIT',
  BAD_SOURCE: 'ERR_BAD_SOURCE',
  BIND: 'ERR_BIND',
  CONFIG: 'ERR_CONFIG',
  CONFLICT: 'ERR_CONFLICT',
  CONNECT: 'ERR_CONNECT',
  CONTEXT_CLOSED: 'ERR_CONTEXT_CLOSED',
  DATAGRAM_SIZE: 'ERR_DATAGRAM_SIZE',
  DATA_TIMEOUT: 'ERR_DATA_TIMEOUT',
  DECODE: 'ERR_DECODE',
  DECODE_BEACON: 'ERR_DECODE_BEACON',
  DECODE_FLAGS: 'ERR_DECODE_FLAGS',
  DECODE_HASH_ALGORITHM: 'ERR_DECODE_HASH_ALGORITHM',
  DECODE_IOTUPD_FRAME: 'ERR_DECODE_IOTUPD_FRAME',
  DECODE_LIBRECAST_MESSAGE: 'ERR_DECODE_LIBRECAST_MESSAGE',
  DECODE_MAGIC: 'ERR_DECODE_MAGIC',
  DECODE_RESUME_STATE: 'ERR_DECODE_RESUME_STATE',
  DECODE_STATUS: 'ERR_DECODE_STATUS',
  DECODE_VERSION: 'ERR_DECODE_VERSION',
  DELEGATION: 'ERR_DELEGATION',
  DEMO_DEVICE: 'ERR_DEMO_DEVICE',
  DEMO_SENDER: 'ERR_DEMO_SENDER',
  DEMO_TIMEOUT: 'ERR_DEMO_TIMEOUT',
  EXPIRED: 'ERR_EXPIRED',
  FAST_FORWARD: 'ERR_FAST_FORWARD',
  FEC: 'ERR_FEC',
  FEC_ARGUMENT: 'ERR_FEC_ARGUMENT',
  FEC_BLOCK_SIZE: 'ERR_FEC_BLOCK_SIZE',
  FEC_CLOSED: 'ERR_FEC_CLOSED',
  FEC_ESI: 'ERR_FEC_ESI',
  FEC_OTI: 'ERR_FEC_OTI',
  FEC_PAYLOAD_ID: 'ERR_FEC_PAYLOAD_ID',
  FEC_SBN: 'ERR_FEC_SBN',
  FEC_SYMBOL_SIZE: 'ERR_FEC_SYMBOL_SIZE',
  FETCH: 'ERR_FETCH',
  FLEET_DB: 'ERR_FLEET_DB',
  FLEET_REGISTRY: 'ERR_FLEET_REGISTRY',
  HALTED: 'ERR_HALTED',
  HEALTH: 'ERR_HEALTH',
  HOOK: 'ERR_HOOK',
  IMAGE_CHANGED: 'ERR_IMAGE_CHANGED',
  IMAGE_SIZE: 'ERR_IMAGE_SIZE',
  INSTALL: 'ERR_INSTALL',
  INTERFACE: 'ERR_INTERFACE',
  INTERFACE_EMPTY: 'ERR_INTERFACE_EMPTY',
  INTERFACE_INVALID: 'ERR_INTERFACE_INVALID',
  INTERFACE_UNKNOWN: 'ERR_INTERFACE_UNKNOWN',
  INTERNAL: 'ERR_INTERNAL',
  INTERRUPTED_DOWNLOAD: 'ERR_INTERRUPTED_DOWNLOAD',
  JOIN: 'ERR_JOIN',
  KEY: 'ERR_KEY',
  KEY_FILE: 'ERR_KEY_FILE',
  KEY_PERMS: 'ERR_KEY_PERMS',
  LAB: 'ERR_LAB',
  LAB_BUILD: 'ERR_LAB_BUILD',
  LAB_COMMAND: 'ERR_LAB_COMMAND',
  LAB_DESTROYED: 'ERR_LAB_DESTROYED',
  LAB_EXEC: 'ERR_LAB_EXEC',
  LAB_HOST: 'ERR_LAB_HOST',
  LAB_HOSTS: 'ERR_LAB_HOSTS',
  LAB_IMPAIR: 'ERR_LAB_IMPAIR',
  LAB_LINK: 'ERR_LAB_LINK',
  LAB_PROBE: 'ERR_LAB_PROBE',
  LAB_UNSUPPORTED: 'ERR_LAB_UNSUPPORTED',
  LC_CONTEXT: 'ERR_LC_CONTEXT',
  LC_SOCKET_REQUIRED: 'ERR_LC_SOCKET_REQUIRED',
  LC_SSM_SOURCE: 'ERR_LC_SSM_SOURCE',
  LEAVE: 'ERR_LEAVE',
  MALFORMED: 'ERR_MALFORMED',
  MISMATCH: 'ERR_MISMATCH',
  NOT_YET_VALID: 'ERR_NOT_YET_VALID',
  NO_MANIFEST: 'ERR_NO_MANIFEST',
  POLICY: 'ERR_POLICY',
  REBOOT: 'ERR_REBOOT',
  RELEASE: 'ERR_RELEASE',
  RELOAD: 'ERR_RELOAD',
  REPEAT: 'ERR_REPEAT',
  REVOKED: 'ERR_REVOKED',
  ROLLBACK: 'ERR_ROLLBACK',
  SECURITY: 'ERR_SECURITY',
  SEND: 'ERR_SEND',
  SIGNATURE: 'ERR_SIGNATURE',
  SOCKET: 'ERR_SOCKET',
  SOCKET_CLOSED: 'ERR_SOCKET_CLOSED',
  SOCKET_CONNECTED: 'ERR_SOCKET_CONNECTED',
  SOCKET_OPTION: 'ERR_SOCKET_OPTION',
  STATE_CORRUPT: 'ERR_STATE_CORRUPT',
  STATE_LOOP: 'ERR_STATE_LOOP',
  STATE_PRODUCT: 'ERR_STATE_PRODUCT',
  STORAGE: 'ERR_STORAGE',
  STORAGE_FULL: 'ERR_STORAGE_FULL',
  STORAGE_PERMISSION: 'ERR_STORAGE_PERMISSION',
  STORAGE_READ: 'ERR_STORAGE_READ',
  TIMEOUT: 'ERR_TIMEOUT',
  TRANSFER: 'ERR_TRANSFER',
  TRANSFER_ENDED: 'ERR_TRANSFER_ENDED',
  UNTRUSTED_KEY: 'ERR_UNTRUSTED_KEY',
  USAGE: 'ERR_USAGE',
  WATCH: 'ERR_WATCH',
  WRONG_PRODUCT: 'ERR_WRONG_PRODUCT',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class IotupdError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Bad arguments or configuration supplied by a user or caller. */
export class UsageError extends IotupdError {
  constructor(message: string, code = 'ERR_USAGE') {
    super(code, message);
  }
}

/** A network interface name that does not exist (never silently fall back to the default). */
export class InterfaceError extends IotupdError {
  constructor(message: string, code = 'ERR_INTERFACE') {
    super(code, message);
  }
}

/** Bytes that do not decode: truncated, out of range, inconsistent. Receivers count and drop. */
export class DecodeError extends IotupdError {
  constructor(message: string, code = 'ERR_DECODE') {
    super(code, message);
  }
}

/** Invalid arguments to the FEC layer (ESI out of range, wrong symbol length, impossible OTI). */
export class FecError extends IotupdError {
  constructor(message: string, code = 'ERR_FEC') {
    super(code, message);
  }
}

/** Authentication, signature, trust or policy failures. */
export class SecurityError extends IotupdError {
  constructor(message: string, code = 'ERR_SECURITY') {
    super(code, message);
  }
}

/** The network lab (namespaces, bridges) could not be built or used. */
export class LabError extends IotupdError {
  constructor(message: string, code = 'ERR_LAB') {
    super(code, message);
  }
}

/** File-system failures worth a clear message (unwritable output, disk full). */
export class StorageError extends IotupdError {
  constructor(message: string, code = 'ERR_STORAGE', options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/**
 * The operation was cancelled through its AbortSignal. Senders and receivers both reject with
 * this; `cause` holds the signal's reason (e.g. the CLI's "interrupted by SIGINT").
 */
export class AbortError extends IotupdError {
  constructor(message = 'aborted', options?: { cause?: unknown }) {
    super(ErrorCode.ABORTED, message, options);
  }
}

/** A deadline passed (a receive that did not complete in time). Not a usage error. */
export class TimeoutError extends IotupdError {
  constructor(message = 'timed out', options?: { cause?: unknown }) {
    super(ErrorCode.TIMEOUT, message, options);
  }
}

/**
 * The error an aborted operation rejects with: the signal's reason when it is already a
 * TimeoutError or AbortError, a TimeoutError for AbortSignal.timeout(), else an AbortError whose
 * message is the reason's and whose cause is the reason.
 */
export function abortError(signal: AbortSignal | undefined): IotupdError {
  const reason: unknown = signal?.reason;
  if (reason instanceof AbortError || reason instanceof TimeoutError) return reason;
  if (reason instanceof Error && reason.name === 'TimeoutError') return new TimeoutError(reason.message, { cause: reason });
  const message = reason instanceof Error && reason.name !== 'AbortError' ? reason.message : 'aborted';
  return new AbortError(message, { cause: reason });
}

/** `err` as an IotupdError: itself when it is one, else an ERR_INTERNAL wrapping it as `cause`. */
export function asIotupdError(err: unknown): IotupdError {
  return err instanceof IotupdError ? err : new IotupdError(ErrorCode.INTERNAL, err instanceof Error ? err.message : String(err), { cause: err });
}
