// Import rules of src/, checked by `npm run lint:imports` (part of `npm test`): the layers of docs/design.md import one way.

/**
 * The layers, lowest first. A module may import its own layer and the layers below it, never one above. Folders in one
 * entry are siblings and may not import each other either (they are separate adapters). docs/design.md, "Layers".
 */
const layers = [
  ['errors.ts', 'serial.ts', 'metrics'],
  ['config'],
  ['decision'],
  ['record'],
  ['proxy'],
  ['shadow'],
  ['analysis'],
  ['coordination', 'flags'],
  ['control'],
  ['admin', 'simulate', 'demo'],
  ['app.ts'],
  ['cli'],
  ['cli.ts'],
];

/** The request path: it reads one snapshot and hands observations to the record port, and nothing more. */
const requestPath = ['decision', 'record', 'proxy', 'shadow'];
/** What the request path must never reach, directly or through any chain of imports. */
const offPath = ['analysis', 'coordination', 'flags', 'control', 'admin', 'simulate', 'app.ts', 'cli', 'cli.ts'];

const escape = (name) => name.replace(/\./g, '\\.');
/** A path regex for a list of top-level entries of src/ (a folder or a file). */
const under = (names) => `^src/(${names.map((n) => (n.endsWith('.ts') ? `${escape(n)}$` : `${escape(n)}/`)).join('|')})`;

const layerRules = layers.flatMap((layer, index) => {
  const above = layers.slice(index + 1).flat();
  const rules = above.length === 0 ? [] : [{
    name: `layer-${layer.join('+')}`,
    comment: `${layer.join(', ')} may import only its own layer and those below (docs/design.md, "Layers")`,
    severity: 'error',
    from: { path: under(layer) },
    to: { path: under(above) },
  }];
  if (layer.length > 1) {
    for (const name of layer) {
      const siblings = layer.filter((other) => other !== name);
      rules.push({
        name: `siblings-${name}`,
        comment: `${name} and ${siblings.join(', ')} are separate modules of one layer and do not import each other`,
        severity: 'error',
        from: { path: under([name]) },
        to: { path: under(siblings) },
      });
    }
  }
  return rules;
});

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'Modules that import each other in a loop cannot be understood, tested or layered one at a time.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'request-path-stays-on-path',
      comment: 'The request path never reaches analysis, coordination, flags, control or admin code, not even through another module (docs/design.md, "The request path").',
      severity: 'error',
      from: { path: under(requestPath) },
      to: { path: under(offPath), reachable: true },
    },
    ...layerRules,
  ],
  options: {
    includeOnly: '^src/',
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
