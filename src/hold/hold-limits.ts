import { E, HoldfastError } from '../errors.js';
import type { Instruct } from '../grip/instruct.js';

class HoldLimitError extends HoldfastError {
  constructor(message: string) {
    super(E.HOLD_LIMIT, message);
  }
}

/** Validates limits a backend's instruction must respect; throws naming the limit. */
export function checkInstruct(instruct: Instruct, maxChannelsPerConnection: number): void {
  if (instruct.channels.length > maxChannelsPerConnection) {
    throw new HoldLimitError(
      `the backend asked for ${instruct.channels.length} channels, over push.maxChannelsPerConnection (${maxChannelsPerConnection})`,
    );
  }
}
