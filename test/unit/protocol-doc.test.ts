import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROTOCOL_ERRORS, RETRY_ELSEWHERE_CODES } from '../../protocol/errors.js';
import { ROOT } from '../helpers/prep.js';

// docs/protocol.md §6 is the spec a client is written from: its error table must be protocol/errors.ts's.
const doc = readFileSync(join(ROOT, 'docs', 'protocol.md'), 'utf8');
const section = doc.slice(doc.indexOf('## 6. Errors'), doc.indexOf('## 7.'));

describe('docs/protocol.md §6 error table', () => {
  it('lists every protocol error code, with its fatality and close code', () => {
    const rows = [...section.matchAll(/^\| `([a-z_]+)` \| (yes|no) \| (\d*) ?\|/gm)].map((m) => ({ code: m[1], fatal: m[2] === 'yes', close: m[3] ? Number(m[3]) : undefined }));
    const server = Object.entries(PROTOCOL_ERRORS).map(([code, e]) => ({ code, fatal: e.fatal, close: 'close' in e ? e.close : undefined }));
    expect(rows.sort((a, b) => a.code.localeCompare(b.code))).toEqual(server.sort((a, b) => a.code.localeCompare(b.code)));
  });

  it('names only fatal refusals as the codes a client retries elsewhere', () => {
    for (const code of RETRY_ELSEWHERE_CODES) expect(PROTOCOL_ERRORS[code as keyof typeof PROTOCOL_ERRORS]?.fatal, code).toBe(true);
  });
});
