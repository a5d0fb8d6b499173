import { defineConfig } from 'vitest/config';

// `kiln-source` makes `import ... from 'kiln'` resolve to the TypeScript sources (see package.json
// exports), so tests always run the code in the tree, never a stale build.
export default defineConfig({
  resolve: { conditions: ['kiln-source'] },
  ssr: { resolve: { conditions: ['kiln-source'] } },
  test: { include: ['tests/**/*.test.ts'], testTimeout: 60_000, env: { KILN_VERIFY: '1' } },
});
