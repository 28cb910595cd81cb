// Route names used by `http.routes` faults and by `stats.requests` (docs/emulator.md: fixed names).
export const ROUTE_NAMES = [
  'upload',
  'content',
  'files',
  'create',
  'retrieve',
  'cancel',
  'list',
  'chat',
  'faults',
  'stats',
] as const;
export type RouteName = (typeof ROUTE_NAMES)[number];
