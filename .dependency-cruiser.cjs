// The direction of imports between the parts of src/ (issue 12; STYLE.md "Wiring"; ARCHITECTURE.md).
// Each row may import from the rows above it and from itself, never from its own row or below: parts on
// one row are siblings that do not know each other. Run by `npm test` (npm run layers) before the tests.
const LAYERS = [
  ['util', 'errors'], // node: only; errors.ts is the one table of HF_ERR_* codes
  ['config', 'observe'],
  ['http'], // raw headers, error answers, request checks, send-stall watch, Node's HTTP internals
  ['grip'], // GRIP instructions, Grip-Sig, publish formats
  ['bus'], // publish/subscribe between nodes; speaks grip's items
  ['proxy'], // backend groups and the one path to send to a group; defines the response takeover
  ['hold'], // held clients; implements the proxy's response takeover, follows links through the proxy
  ['ws'], // WebSocket tunnels and WebSocket-over-HTTP, holding through hold/
  ['edge', 'control'], // the client listener, and the control listener (publish, metrics, dashboard)
  ['holdfast', 'cli', 'demo', 'probe'], // holdfast.ts is the composition root
  ['cluster'],
  ['main'],
];

/** A part is a folder src/NAME/ or a file src/NAME.ts. */
const part = (name) => `^src/${name}(/|\\.ts$)`;
const known = LAYERS.flat().map(part).join('|');

const layerRules = LAYERS.flatMap((row, rank) =>
  row.flatMap((name) => {
    const notAllowed = LAYERS.slice(rank)
      .flat()
      .filter((other) => other !== name);
    if (notAllowed.length === 0) return [];
    return [{
      name: `layer-${name}`,
      comment: `src/${name} may import only from the rows above it in .dependency-cruiser.cjs`,
      severity: 'error',
      from: { path: part(name) },
      to: { path: notAllowed.map(part).join('|') },
    }];
  }),
);

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'no-circular',
      comment: 'No import cycle, between folders or inside one (type-only imports included)',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'unlisted-part',
      comment: 'Every folder and top-level file of src/ has a row in LAYERS',
      severity: 'error',
      from: { path: '^src/', pathNot: known },
      to: {},
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|bench|test)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
  },
};
