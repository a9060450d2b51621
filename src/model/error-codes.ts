/**
 * Every error and diagnostic code kaudit reports, with what it means. Codes are stable: scripts may
 * match on them. UserError takes only these (the type checks it); docs/errors.md lists them and a
 * test keeps it in step.
 */
export const ERROR_CODES = {
  KAUDIT_API_BAD_PARAMETER: 'API: a query parameter has a bad value; the message names it (HTTP 400)',
  KAUDIT_API_BAD_REQUEST: 'API: the request cannot be served as sent (HTTP 400)',
  KAUDIT_API_ERROR: 'dashboard: the API answered an error without a code of its own',
  KAUDIT_API_FORBIDDEN:
    'API: the token is valid but reads only; the endpoint needs an admin token (HTTP 403)',
  KAUDIT_API_NOT_FOUND: 'API: no such route, event or object (HTTP 404)',
  KAUDIT_API_NOT_JSON: 'API: the body should be JSON and is not (HTTP 400)',
  KAUDIT_API_TOO_LARGE: 'API: the request body is larger than the server takes (HTTP 413)',
  KAUDIT_API_UNAUTHORIZED: 'API: no token, or an unknown one (HTTP 401)',
  KAUDIT_AUTH_INVALID: 'a token file is unreadable or holds a token too short to be safe',
  KAUDIT_BAD_KUBERNETES_VERSION: '--kubernetes-version is not a version kaudit knows the policy semantics of',
  KAUDIT_BAD_REQUEST_ATTRIBUTES:
    'policy eval: a request given as JSON lacks a field or has one of the wrong type',
  KAUDIT_CHECKPOINT_CORRUPT:
    "the agent's checkpoint file is not what kaudit writes; the message says how to start over",
  KAUDIT_CONFIG_ENV: 'an environment variable that overrides the config has a bad value',
  KAUDIT_CONFIG_INVALID:
    'the agent config (or a sink, output or secret it names) has a problem at the given line and field',
  KAUDIT_CONFIG_MISSING: 'the agent has no config: give --config, KAUDIT_CONFIG or ./kaudit.yaml',
  KAUDIT_CONFIG_NOT_FOUND: 'the config file named does not exist',
  KAUDIT_CONFIG_YAML: 'a YAML file (config, rules) is not well-formed YAML; the line is given',
  KAUDIT_EVAL_NO_REQUEST: 'policy eval was given no request to evaluate',
  KAUDIT_EVENT_NOT_FOUND: 'no stored event has that audit ID (and stage)',
  KAUDIT_FILE_UNREADABLE:
    'a file named on the command line cannot be read (missing, a directory, no permission)',
  KAUDIT_FLAG_INVALID: 'a command-line flag has a bad value; the message gives the valid ones',
  KAUDIT_INPUT_NOT_AUDIT:
    'ingest: none of the inputs holds an audit event; each is named (inputs that are all empty are only a warning, exit 0)',
  KAUDIT_INPUT_NOT_FOUND: 'ingest: an input path does not exist',
  KAUDIT_INTERNAL: 'a bug in kaudit (HTTP 500); please report it with the log line',
  KAUDIT_LINT_LIST_BODIES: 'policy lint: list and watch responses logged with their bodies (huge events)',
  KAUDIT_LINT_NOT_A_WILDCARD: 'policy lint: a "*" that kube-apiserver does not treat as a wildcard there',
  KAUDIT_LINT_NO_CATCH_ALL:
    'policy lint: no rule at the end catches what no other rule matched (those requests are not logged)',
  KAUDIT_LINT_PODS_SUBRESOURCES:
    'policy lint: "pods" does not match pods/exec, pods/log ...; write pods/* too',
  KAUDIT_LINT_REQUEST_RECEIVED: 'policy lint: RequestReceived not omitted: every request is written twice',
  KAUDIT_LINT_SENSITIVE_BODY: 'policy lint: bodies of secrets, configmaps or tokens would be logged',
  KAUDIT_LINT_SHADOWED: 'policy lint: a rule can never match, an earlier rule takes all its requests',
  KAUDIT_LINT_UNKNOWN_RESOURCE: 'policy lint: a resource no known API group serves (a typo?)',
  KAUDIT_LINT_UNKNOWN_VERB: 'policy lint: not a verb kube-apiserver uses (a typo?)',
  KAUDIT_LINT_WRONG_GROUP: 'policy lint: the resource exists, but in another API group',
  KAUDIT_LISTEN_FAILED: 'the server cannot listen on the address (in use, no permission)',
  KAUDIT_NOT_AUDIT_LOG: 'a file given as an audit log holds no audit event',
  KAUDIT_NO_INPUT: 'the command needs audit events: log files or a store',
  KAUDIT_NO_RULES: 'detection has no rule to run, or a rule file holds none',
  KAUDIT_POLICY_API_VERSION:
    'audit policy: an apiVersion kube-apiserver does not load (for this Kubernetes version)',
  KAUDIT_POLICY_DUPLICATE_FIELD: 'audit policy: a field given twice in one mapping',
  KAUDIT_POLICY_EMPTY: 'audit policy: the file is empty',
  KAUDIT_POLICY_ENTRY: 'audit policy: a list entry is not a mapping',
  KAUDIT_POLICY_FRAGMENT:
    'audit policy: a rule fragment given where a whole Policy is wanted (or the reverse)',
  KAUDIT_POLICY_GROUP: 'audit policy: a resources entry has a bad group',
  KAUDIT_POLICY_INVALID: 'audit policy: kube-apiserver would refuse to load it; every problem is listed',
  KAUDIT_POLICY_KIND: 'audit policy: kind is not Policy',
  KAUDIT_POLICY_LEVEL: 'audit policy: not a level (None, Metadata, Request, RequestResponse)',
  KAUDIT_POLICY_LEVEL_REQUIRED: 'audit policy: a rule without a level',
  KAUDIT_POLICY_MIXED_KINDS: 'audit policy: a rule names both resources and nonResourceURLs',
  KAUDIT_POLICY_MULTIPLE_DOCUMENTS: 'audit policy: several YAML documents in one policy file',
  KAUDIT_POLICY_NONRESOURCE_URL:
    'audit policy: a nonResourceURL that is not a path (or a path with a * not at its end)',
  KAUDIT_POLICY_NO_RULES: 'audit policy: no rules',
  KAUDIT_POLICY_RESOURCE_NAMES:
    'audit policy: resourceNames with a wildcard resource or a subresource pattern',
  KAUDIT_POLICY_STAGE:
    'audit policy: not a stage (RequestReceived, ResponseStarted, ResponseComplete, Panic)',
  KAUDIT_POLICY_TYPE: 'audit policy: a field has the wrong type',
  KAUDIT_POLICY_UNKNOWN_FIELD:
    'audit policy: a field kube-apiserver does not know (strict decoding refuses it)',
  KAUDIT_POLICY_YAML: 'audit policy: not well-formed YAML',
  KAUDIT_QUERY_FAILED: "query: the SQL failed; the database's message follows",
  KAUDIT_QUERY_FORBIDDEN: 'query (ClickHouse): the SQL reads something other than the events view',
  KAUDIT_QUERY_INVALID: 'query: not a single SELECT kaudit can run',
  KAUDIT_QUERY_READONLY: 'query: the statement would write, read host files or load extensions; refused',
  KAUDIT_QUERY_TIMEOUT: 'query: ran past --timeout and was interrupted',
  KAUDIT_QUERY_UNSUPPORTED: 'query: this store takes no SQL',
  KAUDIT_RBAC_INVALID:
    'RBAC file: not the objects kubectl prints (Roles, ClusterRoles, bindings); the line is given',
  KAUDIT_RBAC_UNKNOWN_SUBJECT: 'rbac: the events hold no request by that subject',
  KAUDIT_RETENTION_INVALID: 'retention_days is not a whole number of days',
  KAUDIT_RULE_DUPLICATE: 'detection: two rules with one id',
  KAUDIT_RULE_INVALID: 'detection: a rule file has a problem at the given line and field; nothing runs',
  KAUDIT_RULE_TEST_INVALID: 'detection: a rule test file is not positive:/negative: cases',
  KAUDIT_RULE_UNKNOWN: 'detection: --rule or --disable names no rule',
  KAUDIT_RULE_UNREADABLE: 'detection: a rule file or directory cannot be read, or is too large to be rules',
  KAUDIT_SERVE_UNGUARDED:
    'serve/agent: listening off loopback without tokens or client certificates is refused',
  KAUDIT_SETUP_CA_INVALID: 'setup: the CA certificate or key cannot be read or do not match',
  KAUDIT_SETUP_CONFLICT: 'setup: the manifest already sets an audit flag differently; --force replaces it',
  KAUDIT_SETUP_EXISTS: 'setup: the file to write exists; --force overwrites it',
  KAUDIT_SETUP_MANIFEST_YAML: 'setup: the manifest is not well-formed YAML',
  KAUDIT_SETUP_NOT_APISERVER: 'setup: the manifest is not a kube-apiserver static Pod',
  KAUDIT_SETUP_POLICY_INVALID: 'setup: the policy given does not load',
  KAUDIT_SETUP_WEBHOOK_MISSING: 'setup: --webhook needs the webhook kubeconfig',
  KAUDIT_SIGMA_INVALID: 'Sigma: a rule file is not a Sigma rule; the line is given',
  KAUDIT_SIGMA_SKIPPED: 'Sigma: a rule for another log source (or deprecated) is not run (a warning)',
  KAUDIT_SIGMA_UNSUPPORTED: 'Sigma: a rule uses something kaudit does not support; the reason is given',
  KAUDIT_SIMULATE_NO_INPUT: 'policy simulate: give log files or a store, not both or neither',
  KAUDIT_SIMULATE_OUTPUT: 'simulate: the output cannot be written',
  KAUDIT_SIMULATE_ROTATE_SIZE: 'simulate: --rotate-mb is smaller than one event',
  KAUDIT_SIMULATE_USAGE: 'simulate: a flag has a bad value',
  KAUDIT_STORE_AUTH: 'the ClickHouse server refused the user or password',
  KAUDIT_STORE_LOCKED: 'another process holds the store file and no agent API answers for it',
  KAUDIT_STORE_MISSING: 'no store in the data directory: ingest first, or point --data at one',
  KAUDIT_STORE_OPEN: 'the store cannot be opened; the cause follows',
  KAUDIT_STORE_PASSWORD_FILE: 'the ClickHouse password_file cannot be read',
  KAUDIT_STORE_PASSWORD_IN_URL:
    'a ClickHouse URL with a password in it is refused: use KAUDIT_CLICKHOUSE_PASSWORD or password_file',
  KAUDIT_STORE_READ_ONLY: 'the store was opened read-only and cannot take this',
  KAUDIT_STORE_SCHEMA_NEW: 'the store was made by a newer kaudit; upgrade kaudit',
  KAUDIT_STORE_SCHEMA_OLD: 'the ClickHouse store has an older schema: run kaudit store init to upgrade it',
  KAUDIT_STORE_UNSUPPORTED: 'a store spec kaudit does not know (memory:, duckdb:DIR, DIR, clickhouse://...)',
  KAUDIT_STORE_URL_INVALID: 'a --store URL kaudit cannot read (clickhouse://user@host:8123/db)',
  KAUDIT_UI_NOT_BUILT: 'the dashboard was not built: run npm run build',
  KAUDIT_UNKNOWN_PRESET: 'policy generate: no preset of that name',
  KAUDIT_WASM_UNAVAILABLE: 'the WebAssembly event scanner did not load; the slower JavaScript path is used',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}
