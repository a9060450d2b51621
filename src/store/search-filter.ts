/** The filters of `kaudit search`, shared by every backend. */
export interface SearchFilter {
  user?: string;
  subject?: string;
  verb?: string;
  /** `pods` or `pods/exec`. */
  resource?: string;
  namespace?: string;
  code?: number;
  decision?: string;
  /** Inclusive, RFC3339 UTC. */
  since?: string;
  /** Exclusive, RFC3339 UTC. */
  until?: string;
  cluster?: string;
  limit: number;
}
