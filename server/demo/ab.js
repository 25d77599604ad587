// The A/B page: one row per clip, one player per column (reference, then each model version at each bitrate).
import { $, setStatus } from '../page.js';

function cell(tag, text, note) {
  const el = document.createElement(tag);
  el.textContent = text;
  if (note) {
    const small = document.createElement('small');
    small.textContent = note;
    el.append(small);
  }
  return el;
}

function player(src, label) {
  const audio = document.createElement('audio');
  audio.controls = true;
  audio.preload = 'none';
  audio.src = src;
  audio.title = label;
  audio.dataset.label = label;
  const td = document.createElement('td');
  td.append(audio);
  return td;
}

async function main() {
  const res = await fetch('./clips.json');
  if (!res.ok) throw new Error(`clips.json: HTTP ${res.status}`);
  const { clips, versions } = await res.json();
  const columns = [{ title: 'reference', note: 'original', src: (c) => c.reference }];
  for (const v of versions) {
    for (const coding of v.codings) {
      columns.push({
        title: `${v.name} ${v.version}`,
        note: `${coding.kbps} kbps (${coding.codebooks} codebook${coding.codebooks > 1 ? 's' : ''})${v.current ? '' : ', older version'}`,
        src: (c) => `${coding.audio}${c.id}.wav`,
      });
    }
  }
  const head = document.createElement('tr');
  head.append(cell('th', 'clip'), ...columns.map((col) => cell('th', col.title, col.note)));
  $('grid').tHead.append(head);
  for (const clip of clips) {
    const row = document.createElement('tr');
    row.append(cell('td', clip.id, `${clip.source}; ${clip.from}`), ...columns.map((col) => player(col.src(clip), `${clip.id} ${col.title} ${col.note}`)));
    $('grid').tBodies[0].append(row);
  }
  setStatus(`${clips.length} clips, ${versions.length} model version${versions.length === 1 ? '' : 's'}`);
}

main().catch((e) => setStatus(String(e.message ?? e), true));
