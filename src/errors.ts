/**
 * One error class per failure family, each with a stable `code` that callers and
 * tests can switch on. A CLI prints `iotupd: <message>` and exits non-zero; it never
 * prints a stack trace for a user mistake.
 */
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
