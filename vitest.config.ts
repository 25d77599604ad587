import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // ONNX session threads run compiled code (dist/) even when the tests run the sources
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // ONNX sessions and ffmpeg children are heavy: keep the 2-core CI machine from thrashing.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
