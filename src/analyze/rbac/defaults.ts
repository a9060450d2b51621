/**
 * The bootstrap roles every cluster grants to all authenticated users
 * (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go): discovery, public info and
 * self-reviews. Generated RBAC leaves these requests to them.
 */
import {
  type ClusterRoleBinding,
  RBAC_API_VERSION,
  RBAC_GROUP,
  type RbacSet,
  type Subject,
} from './types.js';

const authenticated = { kind: 'Group' as const, apiGroup: RBAC_GROUP, name: 'system:authenticated' };
const unauthenticated = { kind: 'Group' as const, apiGroup: RBAC_GROUP, name: 'system:unauthenticated' };

export function defaultDiscoveryRbac(): RbacSet {
  const binding = (name: string, subjects: Subject[]): ClusterRoleBinding => ({
    apiVersion: RBAC_API_VERSION,
    kind: 'ClusterRoleBinding',
    metadata: { name },
    subjects,
    roleRef: { apiGroup: RBAC_GROUP, kind: 'ClusterRole', name },
  });
  return {
    roles: [],
    roleBindings: [],
    clusterRoles: [
      {
        apiVersion: RBAC_API_VERSION,
        kind: 'ClusterRole',
        metadata: { name: 'system:discovery' },
        rules: [
          {
            verbs: ['get'],
            nonResourceURLs: [
              '/api',
              '/api/*',
              '/apis',
              '/apis/*',
              '/healthz',
              '/livez',
              '/openapi',
              '/openapi/*',
              '/readyz',
              '/version',
              '/version/',
            ],
          },
        ],
      },
      {
        apiVersion: RBAC_API_VERSION,
        kind: 'ClusterRole',
        metadata: { name: 'system:public-info-viewer' },
        rules: [
          { verbs: ['get'], nonResourceURLs: ['/healthz', '/livez', '/readyz', '/version', '/version/'] },
        ],
      },
      {
        apiVersion: RBAC_API_VERSION,
        kind: 'ClusterRole',
        metadata: { name: 'system:basic-user' },
        rules: [
          {
            verbs: ['create'],
            apiGroups: ['authorization.k8s.io'],
            resources: ['selfsubjectaccessreviews', 'selfsubjectrulesreviews'],
          },
          { verbs: ['create'], apiGroups: ['authentication.k8s.io'], resources: ['selfsubjectreviews'] },
        ],
      },
    ],
    clusterRoleBindings: [
      binding('system:discovery', [authenticated]),
      binding('system:public-info-viewer', [authenticated, unauthenticated]),
      binding('system:basic-user', [authenticated]),
    ],
  };
}
