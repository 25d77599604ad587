import { ensureBuilt } from './prep-helpers.js';

/** Builds dist/ when a source is newer: worker threads (ONNX sessions) and the CLI run compiled code. */
export default function setup(): void {
  ensureBuilt();
}
