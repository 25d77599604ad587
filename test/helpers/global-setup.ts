import { ensureBuilt } from './prep.js';

/** Builds dist/ when a source is newer: worker threads (ONNX sessions) and the CLI run compiled code. */
export default function setup(): void {
  ensureBuilt();
}
