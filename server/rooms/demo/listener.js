// Listener: /v1/rooms/listen -> token packets -> decoded here (onnxruntime-web, wasm) -> speakers.
// Decodes with the same stream decoder as the server (codec/pure/stream-decoder.ts via clients/ts/decoder.ts): the stateful streaming graph when the model has one.
import * as ort from './ort.mjs';
import { joinRoom } from '../src/clients/ts/room-client.js';
import { TokenStreamDecoder, loadDecoder } from '../src/clients/ts/decoder.js';
import { CacheApiGraphCache } from '../src/clients/ts/decoder-cache-web.js';
import { $, setStatus } from '../page.js';

const params = new URLSearchParams(location.search);
for (const f of ['key', 'room']) if (params.get(f)) $(f).value = params.get(f);
ort.env.wasm.wasmPaths = ort.wasmBase;
ort.env.wasm.numThreads = 1; // threads need a cross-origin-isolated page; one thread keeps the page simple

/** Figures the end-to-end test reads. Per publisher: its packets and decoded audio (first 60 s). */
const stats = (window.__listener = { state: 'idle', errors: [], latencyMs: [], arrivalMs: [], skippedSec: 0, bytes: 0, kbps: 0, decoderXRT: 0, fromCache: {}, publishers: {} });
window.__listenerDump = (pub) => {
  const p = stats.publishers[pub];
  return { info: p.info, left: p.left, gaps: p.gaps, packets: p.packets, firstSample: p.firstSample, pcm: p.pcm.flatMap((c) => Array.from(c)) };
};

/** Most audio queued for playback; beyond it pieces are skipped so latency recovers after a stall. */
const MAX_QUEUE_SEC = 0.15;
const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
const spread = (xs) => `${quantile(xs, 0.5).toFixed(0)} / ${quantile(xs, 0.99).toFixed(0)} ms`;

const decoders = new Map(); // model name -> Promise<LocalDecoder>
function decoderFor(model) {
  if (!decoders.has(model)) {
    const cache = CacheApiGraphCache.available() ? new CacheApiGraphCache() : undefined;
    decoders.set(model, loadDecoder({ baseUrl: location.origin, model, apiKey: $('key').value || undefined, ort, cache }).then((d) => {
      stats.fromCache[model] = d.fromCache;
      return d;
    }));
  }
  return decoders.get(model);
}

let leave;

async function join() {
  $('join').disabled = true;
  setStatus('joining…');
  const ctx = new AudioContext();
  await ctx.resume();
  const room = await joinRoom({ url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/rooms/listen`, apiKey: $('key').value || undefined, keyVia: 'protocol', room: $('room').value, onError: (e) => stats.errors.push(e.code) });
  if (params.get('model')) await decoderFor(params.get('model')); // warm up before anyone speaks
  const joinedAt = performance.now();
  const streams = new Map(); // publisher -> { decoder: Promise<TokenStreamDecoder>, playAt, ... }

  const open = (info) => {
    const entry = { info, playAt: 0, chain: Promise.resolve() };
    entry.decoder = decoderFor(info.model).then((d) => new TokenStreamDecoder(d, { numCodebooks: info.codebooks }));
    stats.publishers[info.publisher] = { info, packets: [], pcm: [], pcmSamples: 0, firstSample: undefined, decoded: 0, gaps: 0, left: undefined };
    streams.set(info.publisher, entry);
    return entry;
  };
  for (const info of room.joined.publishers) open(info);

  const play = (entry, audio) => {
    if (audio.pcm.length === 0) return; // a stream's first frame only fills the decoder's lookahead: no audio yet
    const s = stats.publishers[entry.info.publisher];
    const rate = entry.info.modelSampleRate;
    s.firstSample ??= audio.firstSample;
    if (s.pcmSamples < 60 * rate) s.pcm.push(audio.pcm);
    s.pcmSamples += audio.pcm.length;
    s.decoded = audio.firstSample + audio.pcm.length;
    const buf = ctx.createBuffer(1, audio.pcm.length, rate); // the context resamples to its own rate
    buf.copyToChannel(audio.pcm, 0);
    entry.playAt = Math.max(entry.playAt, ctx.currentTime + 0.03); // 30 ms jitter margin when the queue ran dry
    if (entry.playAt - ctx.currentTime > MAX_QUEUE_SEC) {
      // behind (a burst after a stall): skip this piece rather than keep the extra delay for good
      stats.skippedSec += buf.duration;
      return;
    }
    if ($('play').checked) {
      const node = ctx.createBufferSource();
      node.buffer = buf;
      node.connect(ctx.destination);
      node.start(entry.playAt);
    }
    entry.playAt += buf.duration;
    if (entry.info.epochMs) {
      // wall time the last sample reaches the speakers minus wall time it was captured
      const playedEnd = performance.timeOrigin + performance.now() + (entry.playAt - ctx.currentTime + (ctx.outputLatency || 0)) * 1000;
      const capturedEnd = entry.info.epochMs + (s.decoded / rate) * 1000;
      stats.latencyMs.push(playedEnd - capturedEnd);
      if (stats.latencyMs.length > 2000) stats.latencyMs.splice(0, 1000);
    }
  };

  const render = () => {
    const sec = (performance.now() - joinedAt) / 1000;
    stats.bytes = room.bytesReceived;
    stats.kbps = (room.bytesReceived * 8) / sec / 1000;
    $('bandwidth').textContent = `${stats.kbps.toFixed(1)} kbit/s`;
    if (stats.arrivalMs.length) $('arrival').textContent = spread(stats.arrivalMs);
    if (stats.latencyMs.length) $('latency').textContent = spread(stats.latencyMs);
    $('publishers').replaceChildren(...Object.values(stats.publishers).map((p) => {
      const tr = document.createElement('tr');
      for (const v of [p.info.publisher, p.info.label ?? '', p.info.codebooks, p.packets.length ? p.packets.at(-1).firstFrame + p.packets.at(-1).numFrames : 0, p.gaps, `${(p.decoded / p.info.modelSampleRate).toFixed(1)} s${p.left !== undefined ? ' (left)' : ''}`]) {
        const td = document.createElement('td');
        td.textContent = String(v);
        tr.append(td);
      }
      return tr;
    }));
  };
  const speedTimer = setInterval(async () => {
    let runMs = 0, seconds = 0;
    for (const d of decoders.values()) { const dec = await d; runMs += dec.stats.runMs; seconds += dec.stats.samples / dec.manifest.sampleRate; }
    if (runMs > 0) { stats.decoderXRT = seconds / (runMs / 1000); $('speed').textContent = `${stats.decoderXRT.toFixed(1)}× real time`; }
  }, 500);

  const loop = (async () => {
    for await (const ev of room) {
      if (ev.type === 'publisher_joined') open(ev.publisher);
      else if (ev.type === 'tokens') {
        const entry = streams.get(ev.publisher) ?? open(room.publishers.get(ev.publisher));
        const s = stats.publishers[ev.publisher];
        const { firstFrame, tokens } = ev.packet;
        if (entry.info.epochMs) {
          // mouth -> tokens at the listener: capture time of the packet's last sample to its arrival
          stats.arrivalMs.push(performance.timeOrigin + ev.receivedAt - (entry.info.epochMs + ((firstFrame + tokens.numFrames) / entry.info.frameRate) * 1000));
          if (stats.arrivalMs.length > 2000) stats.arrivalMs.splice(0, 1000);
        }
        if (s.packets.length < 60 * entry.info.frameRate) s.packets.push({ firstFrame, numFrames: tokens.numFrames, numCodebooks: tokens.numCodebooks, codes: Array.from(tokens.codes) });
        entry.chain = entry.chain.then(async () => {
          const dec = await entry.decoder;
          for (const audio of await dec.push(firstFrame, tokens)) play(entry, audio);
          s.gaps = dec.gaps;
        });
        entry.chain.catch((e) => { stats.errors.push(e.code ?? String(e)); setStatus(`${e.code ?? 'error'}: ${e.message}`, true); });
      } else if (ev.type === 'publisher_left') {
        const entry = streams.get(ev.publisher);
        if (!entry) continue;
        streams.delete(ev.publisher);
        entry.chain = entry.chain.then(async () => {
          for (const audio of await (await entry.decoder).finish()) play(entry, audio);
          stats.publishers[ev.publisher].left = ev.frames;
        });
      }
      render();
    }
  })();
  loop.catch((e) => { stats.state = 'failed'; stats.errors.push(e.code ?? String(e)); setStatus(`${e.code ?? 'error'}: ${e.message}`, true); });

  leave = async () => {
    room.close();
    await loop;
    clearInterval(speedTimer);
    await ctx.close();
  };
  stats.state = 'joined';
  setStatus(`listening in room "${room.joined.room}" (${room.joined.publishers.length} speaking)`);
  $('leave').disabled = false;
}

$('join').onclick = () => join().catch((e) => { stats.state = 'failed'; stats.errors.push(e.code ?? String(e)); setStatus(`${e.code ?? 'error'}: ${e.message}`, true); $('join').disabled = false; });
$('leave').onclick = async () => {
  $('leave').disabled = true;
  try { await leave?.(); stats.state = 'left'; setStatus('left the room'); } catch (e) { stats.errors.push(e.code ?? String(e)); setStatus(String(e.message ?? e), true); }
  $('join').disabled = false;
};
