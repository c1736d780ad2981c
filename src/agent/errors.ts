import { IotupdError } from '../errors.js';

/**
 * A failure of the update process itself, with a stable code: ERR_HOOK (a hook command failed),
 * ERR_HEALTH (the health check failed), ERR_IMAGE_CHANGED (the image on disk no longer matches the
 * signed manifest), ERR_STATE_LOOP (a state was entered too often for one release), ERR_INSTALL.
 */
export class AgentError extends IotupdError {
  constructor(message: string, code = 'ERR_AGENT', options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
