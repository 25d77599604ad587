import { range } from './parse.js';
import { CROSS_RULES, GROUPS, SETTINGS, type Group, type Setting } from './table.js';

const ROWS: readonly Setting[] = SETTINGS;
const GROUP_ORDER = Object.keys(GROUPS) as Group[];

/** `tokstream serve --help`: every setting by group, with its default (this machine's) and env var. */
export function serverUsage(): string {
  const out = ['tokstream serve [options]', '', 'A flag beats its environment variable, which beats the default. Reference: docs/configuration.md'];
  for (const g of GROUP_ORDER) {
    out.push('', `${GROUPS[g].title}:`);
    for (const s of ROWS.filter((r) => r.group === g)) out.push(`  ${flagsOf(s, true, (f) => f).padEnd(36)} ${s.help} [${helpFacts(s)}; env ${s.env}]`);
  }
  return `${out.join('\n')}\n`;
}

/** docs/configuration.md, whole: written by `npm run docs:config`, checked by test/unit/server-settings.test.ts. */
export function configurationPage(): string {
  const out = [
    '# Configuration',
    '',
    '<!-- Generated from server/settings/table.ts by `npm run docs:config`; edit the table, not this page. -->',
    '',
    'Every setting of `tokstream serve`, each settable by a flag or an environment variable. A flag beats',
    'its variable, the variable beats the default; an empty variable counts as unset. `tokstream serve --help`',
    'prints the same list with this machine\'s defaults. Code that starts the server (`resolveServerConfig`',
    'in `server/config.ts`, or the HTTP plugin\'s `config` option) uses the **key** column.',
    '',
    '- **Numbers** are plain (`65536`, `1e6`); a unit is in the setting\'s name (`_MS`, `_SEC`, `_BYTES`).',
    '- **Booleans**: `--demo` / `--no-demo`; in a variable `1 true yes on` or `0 false no off`.',
    '- **Lists**: repeat the flag (`--api-key A --api-key B`) or separate by commas in the variable',
    '  (`TOKSTREAM_API_KEYS=A,B`); flags replace the variable\'s list.',
    '- A value out of range, an unknown flag or an inconsistent pair stops start-up (exit 2) with one line',
    '  naming the flag or variable and what it accepts, e.g.',
    '  `TOKSTREAM_MAX_STREAMS: must be an integer ≥ 1, got 0`.',
    '',
    'A deployment typically sets a few of them, e.g.:',
    '',
    '```sh',
    'TOKSTREAM_HOST=0.0.0.0 TOKSTREAM_API_KEYS_FILE=/run/secrets/tokstream-keys TOKSTREAM_PROVIDER=auto tokstream serve',
    'tokstream serve --host 0.0.0.0 --api-keys-file /run/secrets/tokstream-keys --provider auto   # the same, by flags',
    '```',
    '',
    'To add a setting, add one row to `SETTINGS` in `server/settings/table.ts` and run `npm run docs:config`:',
    'the config type, `--help`, the flag, the variable, the checks and this page follow from the row.',
  ];
  for (const g of GROUP_ORDER) {
    out.push('', `## ${GROUPS[g].title}`, '', GROUPS[g].intro, '', '| flag | environment variable | default | accepts | key | meaning |', '| --- | --- | --- | --- | --- | --- |');
    for (const s of ROWS.filter((r) => r.group === g)) {
      const meaning = `${capital(s.help)}.${s.more ? ` ${s.more}` : ''}`;
      out.push(`| ${flagsOf(s, false, (f) => `\`${f}\``)} | \`${s.env}\` | ${docDefault(s)} | ${accepts(s)} | \`${s.key}\` | ${cell(meaning)} |`);
    }
  }
  out.push('', '## Rules between settings', '', 'Checked after each setting on its own:', '');
  for (const r of CROSS_RULES) out.push(`- ${r.rule}`);
  return `${out.join('\n')}\n`;
}

/** `--port <int>` (or `--port`); a bool both ways: `--demo, --no-demo`. */
function flagsOf(s: Setting, withValue: boolean, code: (flag: string) => string): string {
  if (s.kind !== 'bool') return code(withValue ? `--${s.flag} <${metavar(s)}>` : `--${s.flag}`);
  return s.flag.startsWith('no-') ? code(`--${s.flag}`) : `${code(`--${s.flag}`)}, ${code(`--no-${s.flag}`)}`;
}

/** What `--help` says besides the help line: this machine's default, what is accepted. */
function helpFacts(s: Setting): string {
  switch (s.kind) {
    case 'int':
    case 'number': return [`${s.default}${unitSuffix(s.unit)}`, range(s)].filter(Boolean).join(', ');
    case 'enum': return s.metavar ? `${s.default}; one of ${s.choices.join(', ')}` : s.default;
    case 'list': return `${plainDefault(s)}; repeatable`;
    default: return plainDefault(s);
  }
}

function metavar(s: Setting): string {
  if (s.metavar) return s.metavar;
  if (s.kind === 'enum') return s.choices.join('|');
  if ((s.kind === 'int' || s.kind === 'number') && s.unit && s.unit !== 'share') return s.unit;
  return s.kind;
}

function plainDefault(s: Setting): string {
  if (s.kind === 'list') return s.default.length ? s.default.join(',') : 'none';
  return s.default === undefined ? 'unset' : String(s.default);
}

function docDefault(s: Setting): string {
  if (s.shown) return cell(s.shown);
  if (s.kind === 'int' || s.kind === 'number') {
    const human = humanize(s.default, s.unit);
    return `\`${s.default}\`${human ? ` (${human})` : ''}`;
  }
  return (s.kind === 'list' && s.default.length === 0) || s.default === undefined ? plainDefault(s) : `\`${plainDefault(s)}\``;
}

function accepts(s: Setting): string {
  switch (s.kind) {
    case 'int':
    case 'number': return [`${s.kind === 'int' ? 'integer' : 'number'} ${range(s)}`.trim(), s.unit !== 'share' && s.unit].filter(Boolean).join(', ');
    case 'enum': return s.choices.map((c) => `\`${c}\``).join(', ');
    case 'bool': return 'boolean';
    case 'list': return `list of \`<${s.metavar ?? 'value'}>\``;
    case 'string': return `\`<${s.metavar ?? 'text'}>\``;
  }
}

function unitSuffix(unit: string | undefined): string {
  return unit && unit !== 'share' ? ` ${unit}` : '';
}

/** 65536 bytes -> "64 KiB", 1800000 ms -> "30 min"; nothing when the plain figure says it already. */
function humanize(v: number, unit: string | undefined): string {
  if (unit === 'bytes') {
    for (const [size, name] of [[1 << 30, 'GiB'], [1 << 20, 'MiB'], [1 << 10, 'KiB']] as const) if (v >= size && v % size === 0) return `${v / size} ${name}`;
    return '';
  }
  const sec = unit === 'ms' ? v / 1000 : unit === 's' ? v : undefined;
  if (sec === undefined || sec < 60 && unit === 's') return '';
  if (sec >= 3600 && sec % 3600 === 0) return `${sec / 3600} h`;
  if (sec >= 60 && sec % 60 === 0) return `${sec / 60} min`;
  return sec >= 1 && Number.isInteger(sec) ? `${sec} s` : '';
}

const capital = (t: string) => t.charAt(0).toUpperCase() + t.slice(1);
const cell = (t: string) => t.replace(/\|/g, '\\|');
