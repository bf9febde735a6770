/**
 * The permission vocabulary in words, for people: the consent page and the account page show
 * each permission by what it lets someone do, the raw code beside it in small print. One table
 * beside the vocabulary (Mimir's own permissions, from the routes that check them in
 * fixtures/mimir-http-surface.json, and the hub's), and the wildcard shapes `ns:*` and
 * `mcp:tool:<name>`. A permission the table does not know (one a custom rbac.json invented) is
 * shown as its code.
 */

/** What each permission lets its holder do, as one sentence fragment. */
export const PERMISSION_DESCRIPTIONS: Readonly<Record<string, string>> = Object.freeze({
  '*': 'Everything: every permission of Mimir and of this hub, administration included',
  // Mimir's own vocabulary
  'nodes:read': 'Read the memory graph: nodes, their types and details',
  'nodes:write': 'Create and change nodes in the memory graph, and save conversations to it',
  'nodes:delete': 'Delete nodes (and their edges) from the memory graph',
  'search:execute': 'Search the memory graph (semantic vector search)',
  'orchestration:read': 'See agents, plans, workflow executions and their deliverables',
  'orchestration:write': 'Create and delete agents, save plans, validate workflow scripts',
  'orchestration:execute': 'Generate plans and run multi-agent workflows',
  'orchestration:cancel': 'Cancel running workflow executions',
  'files:read': 'See indexed folders, indexing status and progress',
  'files:index': 'Index folders and stop watching them',
  'chat:use': 'Chat with Mimir (chat completions, embeddings, models, preambles)',
  'keys:read': 'List your API keys in Mimir',
  'keys:write': 'Generate API keys in Mimir',
  'keys:delete': 'Revoke API keys in Mimir',
  'mcp:*': 'Use every MCP tool of Mimir',
  admin: 'Administer Mimir itself: its RBAC configuration, migrations and maintenance',
  // The hub's own
  'admin:manage': 'Administer this hub: API keys, service accounts, clients, sessions and other people\'s credentials',
  'metrics:read': 'Read this hub\'s metrics',
  'upstream:access': 'Reach Mimir paths outside the hub\'s route table',
  introspect: 'Check whether tokens are valid (token introspection, RFC 7662)',
});

const NAMESPACES: Readonly<Record<string, string>> = Object.freeze({
  nodes: 'the memory graph', search: 'search', orchestration: 'workflows and agents', files: 'indexed files',
  chat: 'chat', keys: 'Mimir API keys', mcp: 'MCP tools', admin: 'administration', metrics: 'metrics', upstream: 'upstream paths',
});

/**
 * A permission in words.
 *
 * @example
 * describePermission('nodes:read')            // 'Read the memory graph: nodes, their types and details'
 * describePermission('mcp:tool:memory_node')  // 'Use the MCP tool memory_node'
 */
export function describePermission(permission: string): string {
  if (Object.hasOwn(PERMISSION_DESCRIPTIONS, permission)) return PERMISSION_DESCRIPTIONS[permission]!;
  if (permission.startsWith('mcp:tool:')) {
    const tool = permission.slice('mcp:tool:'.length);
    return tool ? `Use the MCP tool ${tool}` : 'Use an MCP tool with no name';
  }
  const wildcard = /^([A-Za-z][\w-]*):\*$/.exec(permission);
  if (wildcard) {
    const ns = wildcard[1]!;
    return `Everything about ${Object.hasOwn(NAMESPACES, ns) ? NAMESPACES[ns] : ns} (every ${ns} permission)`;
  }
  return 'A permission your RBAC configuration defines';
}
