/**
 * The server's settings. Each is one row of server/settings/table.ts, from which the config type,
 * `serve --help`, flag and environment parsing, the checks and docs/configuration.md are derived.
 */
export { SETTINGS, type ServerConfig, type Setting } from './settings/table.js';
export { ConfigError, DEFAULT_SERVER_CONFIG, parseServerArgs, resolveServerConfig } from './settings/parse.js';
export { configurationPage, serverUsage } from './settings/render.js';
