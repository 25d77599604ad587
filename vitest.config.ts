import { defineConfig } from 'vitest/config';

// Two tiers (docs/architecture.md, "Tests"): `unit` needs nothing but Node (no ffmpeg, Redis,
// Chromium, ONNX model or Python) and runs in seconds; `integration` runs the real parts.
export default defineConfig({
  test: {
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 10_000 },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // ONNX session threads run compiled code (dist/) even when the tests run the sources
          globalSetup: ['test/helpers/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
    // ONNX sessions and ffmpeg children are heavy: keep the 2-core CI machine from thrashing.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
