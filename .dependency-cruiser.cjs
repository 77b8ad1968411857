/**
 * `npm run lint`: the import structure of Vigil, checked by dependency-cruiser on the TypeScript
 * sources (no build needed). Each rule says which layout it keeps; docs/architecture.md says why the
 * parts are cut the way they are.
 *
 * The parts: core/ (wire-free domain code), proto/ (the contract: proto/gen is generated, proto/*.ts
 * are the mappers), pki/, agent/, controller/, test/ (integration and end-to-end tests and their
 * support; unit tests live beside the code and count as part of the folder they sit in).
 * bench/ is plain .mjs run against dist/ and is not linted.
 *
 * Type-only imports count (tsPreCompilationDeps: true below): `import type` is still a dependency
 * of one module on another's design, a cycle through types is still a cycle to untangle, and a type
 * taken from proto/gen ties that module to the wire just as much as a value does.
 */

const fs = require('node:fs');
const path = require('node:path');

/** The linted trees, as package.json's lint script names them (bench/ is out of scope: .mjs against dist/). */
const SOURCES = ['core', 'proto', 'pki', 'agent', 'controller', 'test'];

/**
 * Rule 2: the modules allowed to import the generated protobuf code, proto/gen: the edges where a
 * wire message is built or read. Everything else works on core/ types and goes through them.
 */
const PROTO_GEN_EDGES = [
  '^proto/gen/', //                     the generated files import each other
  '^proto/[^/]+\\.ts$', //               the mappers (proto/convert.ts, proto/sync-messages.ts, …) and their tests
  '^agent/transport/', //                the agent's gRPC edge (client, stream, exchanges)
  '^controller/services/', //            the controller's gRPC services and interceptors
  // The listeners register the services, so they name their descriptors. Only this top-level
  // file, not controller/*.ts at large (controller.ts only wires, without wire types).
  '^controller/listeners\\.ts$',
  '^controller/vigilctl/', //            the operator's client edge (admin client, commands, output)
  '^test/', //                          tests speak the wire to the real processes
];

/**
 * Rule 5: parts that have an index (an `index.ts` re-exporting what the rest of the code may use).
 * From outside such a folder only its index may be imported; files inside it (its own unit tests
 * included) import each other freely. Every folder with an index.ts counts, so a part that gains
 * an index is covered without editing this file; pki/ and controller/store/ are required to have
 * one.
 *
 * test/ is not exempt: integration and end-to-end tests use a part through its index like any
 * other client.
 */
const REQUIRED_INDEXED = ['pki', 'controller/store'];
const INDEXED = (() => {
  const found = new Set(REQUIRED_INDEXED);
  for (const top of SOURCES) {
    for (const rel of fs.readdirSync(path.join(__dirname, top), { recursive: true })) {
      const p = `${top}/${String(rel).split(path.sep).join('/')}`;
      if (p.startsWith('proto/gen/')) continue;
      if (/\/index\.ts$/.test(p)) found.add(p.slice(0, -'/index.ts'.length));
    }
  }
  for (const dir of REQUIRED_INDEXED) {
    if (!fs.existsSync(path.join(__dirname, dir, 'index.ts'))) {
      throw new Error(`.dependency-cruiser.cjs: ${dir}/index.ts is gone; rule 5 expects it`);
    }
  }
  return [...found].sort();
})();

const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    // Rule 1
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'No import cycles anywhere (type-only imports included). Break the cycle: move what both ' +
        'sides need to a module below them, or pass it in.',
      from: {},
      to: { circular: true },
    },

    // Rule 2
    {
      name: 'proto-gen-only-at-edges',
      severity: 'error',
      comment:
        'proto/gen (generated wire code) is imported only by the mappers (proto/*.ts), the agent\'s ' +
        'transport (agent/transport/), the controller\'s services (controller/services/) and its ' +
        'listeners (controller/listeners.ts), ' +
        'vigilctl (controller/vigilctl/) and test/. Everywhere else use the core/ types and the ' +
        'mappers in proto/.',
      from: { pathNot: PROTO_GEN_EDGES },
      to: { path: '^proto/gen/' },
    },

    // Rule 3
    {
      name: 'agent-not-to-controller',
      severity: 'error',
      comment: 'agent/ never imports controller/: what both need lives in core/, proto/ or pki/.',
      from: { path: '^agent/' },
      to: { path: '^controller/' },
    },
    {
      name: 'controller-not-to-agent',
      severity: 'error',
      comment: 'controller/ never imports agent/: what both need lives in core/, proto/ or pki/.',
      from: { path: '^controller/' },
      to: { path: '^agent/' },
    },

    // Rule 4
    {
      name: 'core-is-wire-free',
      severity: 'error',
      comment:
        'core/ is shared, wire-free domain code: it imports nothing from agent/, controller/, pki/ ' +
        'or proto/ (its own tests included).',
      from: { path: '^core/' },
      to: { path: '^(agent|controller|pki|proto)/' },
    },

    // Rule 5
    ...INDEXED.map((dir) => ({
      name: `only-through-index:${dir}`,
      severity: 'error',
      comment: `From outside ${dir}/ import only ${dir}/index.ts; add to the index what you need.`,
      from: { pathNot: `^${esc(dir)}/` },
      to: { path: `^${esc(dir)}/`, pathNot: `^${esc(dir)}/index\\.ts$` },
    })),

    // Rule 6
    {
      name: 'mappers-below-agent-and-controller',
      severity: 'error',
      comment:
        'The mappers (proto/*.ts) and the generated code serve both sides: they may import core/, ' +
        'never agent/ or controller/.',
      from: { path: '^proto/' },
      to: { path: '^(agent|controller)/' },
    },

    // Keeps the lint honest: an import it cannot resolve is an edge no rule above would see.
    {
      name: 'no-unresolvable',
      severity: 'error',
      comment: 'Every relative import must resolve to a file (a .js specifier resolves to its .ts source).',
      from: {},
      to: { couldNotResolve: true },
    },
  ],

  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules|bench)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    // Packages are resolved through their "exports" maps, as Node does (e.g. @bufbuild/protobuf/wkt).
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
    skipAnalysisNotInRules: true,
    progress: { type: 'none' },
  },
};
