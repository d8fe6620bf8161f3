/**
 * `Grip-Feature`, sent to backends on every request: what this proxy understands, so a backend can tell
 * Holdfast from an older GRIP proxy. Names follow Pushpin's.
 */
export const GRIP_FEATURES = [
  'status',
  'link:next',
  'link:gone',
  'keep-alive',
  'filter:skip-self',
  'filter:skip-users',
  'filter:require-sub',
].join(', ');
