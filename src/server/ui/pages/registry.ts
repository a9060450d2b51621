import type { JSX } from 'preact';
import { Denials } from './denials.js';
import { Rbac } from './rbac.js';
import { Security } from './security.js';

/** Pages of features that arrive with their own modules (denials and RBAC, detections). */
export const PAGES_AFTER: {
  id: string;
  title: string;
  view: (p: { params: URLSearchParams }) => JSX.Element;
}[] = [
  { id: 'denials', title: 'Denials', view: Denials },
  { id: 'rbac', title: 'RBAC', view: Rbac },
  { id: 'security', title: 'Security', view: Security },
];
