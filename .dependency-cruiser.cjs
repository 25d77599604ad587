/**
 * Layer rules (docs/architecture.md): `npm run check:layers`, part of `npm test`.
 * Type-only imports count: a type import still ties one layer to another's contract.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'No import cycles anywhere, type-only ones included.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'codec-is-transport-free',
      severity: 'error',
      comment: 'codec/ knows nothing of transports, commands or clients.',
      from: { path: '^codec/' },
      to: { path: '^(server|cli|clients|prep|bench|protocol)/' },
    },
    {
      name: 'protocol-imports-nothing-of-ours',
      severity: 'error',
      comment: 'protocol/ (the wire contract both sides import) depends on nothing but itself and codec types: no node: modules, no packages.',
      from: { path: '^protocol/' },
      to: { pathNot: ['^protocol/', '^codec/pure/'] },
    },
    {
      name: 'protocol-takes-only-types-from-codec',
      severity: 'error',
      comment: 'protocol/ may name the pure codec types (type-only imports of codec/pure/), never run codec code.',
      from: { path: '^protocol/' },
      to: { path: '^codec/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'clients-never-import-server',
      severity: 'error',
      comment: 'clients/ talk to the server over the wire only.',
      from: { path: '^clients/' },
      to: { path: '^(server|cli|prep|bench)/' },
    },
    {
      name: 'server-never-imports-clients',
      severity: 'error',
      comment: 'The wire contract lives in protocol/, which both sides import; the server does not reach into a client.',
      from: { path: '^server/' },
      to: { path: '^clients/' },
    },
    {
      name: 'prep-never-imports-server',
      severity: 'error',
      comment: 'prep/ (corpus preprocessing) runs without the server.',
      from: { path: '^prep/' },
      to: { path: '^(server|bench)/' },
    },
    {
      name: 'server-never-imports-cli',
      severity: 'error',
      comment: 'cli/ drives the server, not the other way round.',
      from: { path: '^server/' },
      to: { path: '^(cli|bench)/' },
    },
    {
      name: 'only-tests-import-tests',
      severity: 'error',
      from: { pathNot: '^test/' },
      to: { path: '^test/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // our TypeScript layers; node: modules and packages still show up as targets of their imports
    includeOnly: { path: '^(codec|protocol|clients|server|cli|prep|bench|test)/|^node_modules/|^[a-z:_/]+$' },
    exclude: { path: '^(dist|models)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.test.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.cjs', '.json'] },
  },
};
