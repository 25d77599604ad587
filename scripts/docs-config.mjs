// Writes docs/configuration.md from the settings table (server/settings/table.ts); run by `npm run docs:config`.
import { writeFileSync } from 'node:fs';
import { configurationPage } from '../dist/server/settings/render.js';

const page = new URL('../docs/configuration.md', import.meta.url);
writeFileSync(page, configurationPage());
console.log(`wrote ${page.pathname}`);
