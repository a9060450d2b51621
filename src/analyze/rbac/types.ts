/** rbac.authorization.k8s.io/v1 objects (k8s.io/api/rbac/v1/types.go), as far as the authorizer reads them. */

export const RBAC_GROUP = 'rbac.authorization.k8s.io';
export const RBAC_API_VERSION = 'rbac.authorization.k8s.io/v1';

export interface PolicyRule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export type SubjectKind = 'User' | 'Group' | 'ServiceAccount';

export interface Subject {
  kind: SubjectKind;
  name: string;
  namespace?: string;
  apiGroup?: string;
}

export interface RoleRef {
  apiGroup: string;
  kind: 'Role' | 'ClusterRole';
  name: string;
}

export interface Role {
  apiVersion: typeof RBAC_API_VERSION;
  kind: 'Role';
  metadata: ObjectMeta & { namespace: string };
  rules: PolicyRule[];
}

export interface ClusterRole {
  apiVersion: typeof RBAC_API_VERSION;
  kind: 'ClusterRole';
  metadata: ObjectMeta;
  rules: PolicyRule[];
  aggregationRule?: { clusterRoleSelectors: LabelSelector[] };
}

export interface RoleBinding {
  apiVersion: typeof RBAC_API_VERSION;
  kind: 'RoleBinding';
  metadata: ObjectMeta & { namespace: string };
  subjects: Subject[];
  roleRef: RoleRef;
}

export interface ClusterRoleBinding {
  apiVersion: typeof RBAC_API_VERSION;
  kind: 'ClusterRoleBinding';
  metadata: ObjectMeta;
  subjects: Subject[];
  roleRef: RoleRef;
}

export type RbacObject = Role | ClusterRole | RoleBinding | ClusterRoleBinding;

export interface RbacSet {
  roles: Role[];
  clusterRoles: ClusterRole[];
  roleBindings: RoleBinding[];
  clusterRoleBindings: ClusterRoleBinding[];
}

export function emptyRbac(): RbacSet {
  return { roles: [], clusterRoles: [], roleBindings: [], clusterRoleBindings: [] };
}

export function mergeRbac(...sets: RbacSet[]): RbacSet {
  const out = emptyRbac();
  for (const s of sets) {
    out.roles.push(...s.roles);
    out.clusterRoles.push(...s.clusterRoles);
    out.roleBindings.push(...s.roleBindings);
    out.clusterRoleBindings.push(...s.clusterRoleBindings);
  }
  return out;
}

export function rbacObjects(s: RbacSet): RbacObject[] {
  return [...s.clusterRoles, ...s.clusterRoleBindings, ...s.roles, ...s.roleBindings];
}

export function addRbacObject(s: RbacSet, o: RbacObject): void {
  if (o.kind === 'Role') s.roles.push(o);
  else if (o.kind === 'ClusterRole') s.clusterRoles.push(o);
  else if (o.kind === 'RoleBinding') s.roleBindings.push(o);
  else s.clusterRoleBindings.push(o);
}
