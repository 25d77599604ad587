import type { OutputFormat } from '../../codec/audio-output.js';
import { HttpApiError } from './errors.js';

/** Values of the `format` parameter. */
export const FORMAT_PARAM_VALUES = ['wav', 'flac', 'ogg', 'opus', 'mp3'] as const;
export type FormatParam = (typeof FORMAT_PARAM_VALUES)[number];

const BY_MEDIA_TYPE: Record<string, OutputFormat> = {
  'audio/wav': 'wav',
  'audio/wave': 'wav',
  'audio/x-wav': 'wav',
  'audio/vnd.wave': 'wav',
  'audio/flac': 'flac',
  'audio/x-flac': 'flac',
  'audio/ogg': 'ogg',
  'audio/opus': 'ogg',
  'application/ogg': 'ogg',
  'audio/mpeg': 'mp3',
  'audio/mp3': 'mp3',
  'audio/*': 'wav',
  '*/*': 'wav',
};

/**
 * The output container: the `format` parameter wins, else the best-rated type of
 * the Accept header we can produce, else WAV. An Accept header that only names
 * types we cannot produce gets 406.
 */
export function chooseOutputFormat(param: FormatParam | undefined, accept: string | undefined): OutputFormat {
  if (param) return param === 'opus' ? 'ogg' : param;
  if (!accept || !accept.trim()) return 'wav';
  let best: { format: OutputFormat; q: number } | undefined;
  for (const item of accept.split(',')) {
    const [type, ...params] = item.trim().toLowerCase().split(';').map((s) => s.trim());
    const qParam = params.find((p) => p.startsWith('q='));
    const q = qParam ? Number(qParam.slice(2)) : 1;
    const format = BY_MEDIA_TYPE[type];
    if (!format || !(q > 0)) continue;
    if (!best || q > best.q) best = { format, q };
  }
  if (!best) throw new HttpApiError(406, 'invalid_request', `cannot produce any of "${accept}"; available: ${Object.keys(BY_MEDIA_TYPE).filter((t) => !t.includes('*')).join(', ')}`);
  return best.format;
}
