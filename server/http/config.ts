import { defaultsOf, resolveSettings } from '../settings/parse.js';
import { SETTINGS, type GroupConfig } from '../settings/table.js';

/** Limits and knobs of the batch HTTP API: the `http` rows of the settings table (docs/configuration.md). */
export type HttpApiConfig = GroupConfig<'http'>;

const HTTP_ROWS = SETTINGS.filter((s): s is Extract<typeof s, { group: 'http' }> => s.group === 'http');

export const DEFAULT_HTTP_API_CONFIG: HttpApiConfig = defaultsOf(HTTP_ROWS);

/** Fills defaults and refuses nonsense (ConfigError) at start-up rather than at the first request. */
export function resolveHttpApiConfig(partial: Partial<HttpApiConfig> = {}): HttpApiConfig {
  return resolveSettings(HTTP_ROWS, partial);
}
