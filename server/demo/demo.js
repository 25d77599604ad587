// Browser demo: microphone -> encode stream -> token raster -> decode stream -> speakers.
// Uses only the TypeScript client (served at ./src/clients/ts/client.js) and the documented protocol.
import { openDecodeStream, openEncodeStream } from './src/clients/ts/client.js';
import { $, openMicrophone, setStatus } from './page.js';

const params = new URLSearchParams(location.search);
if (params.get('token')) $('key').value = params.get('token');

// Figures the end-to-end browser test reads.
const stats = (window.__demo = { state: 'idle', framesReceived: 0, packets: 0, codes: [], decodedSamples: 0, decodedEnergy: 0, encLatencyMs: [], rtLatencyMs: [], errors: [] });

const streamUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/stream`;
let running;

fetch('/readyz').then((r) => r.json()).then((r) => {
  for (const m of r.models ?? []) $('model').append(new Option(`${m.name} ${m.version} (${m.provider})`, m.name));
});

/** When each client-rate sample index was captured, to turn sample positions into latencies. */
class Clock {
  constructor() { this.marks = []; }
  mark(sampleEnd) { this.marks.push([sampleEnd, performance.now()]); if (this.marks.length > 2000) this.marks.splice(0, 1000); }
  timeOf(sample) { for (const [end, t] of this.marks) if (end >= sample) return t; return undefined; }
}

function mean(xs) { return xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length); }
function showLatency(id, xs) { $(id).textContent = xs.length ? `${xs.at(-1).toFixed(0)} / ${mean(xs).toFixed(0)} ms` : '–'; }

async function start() {
  $('start').disabled = true;
  setStatus('starting…');
  const { ctx, mic } = await openMicrophone();
  const common = { url: streamUrl, apiKey: $('key').value || undefined, keyVia: 'protocol', model: $('model').value || undefined, sampleRate: ctx.sampleRate, format: 'f32le', codebooks: Number($('codebooks').value), chunkMs: Number($('chunk').value) };
  const enc = await openEncodeStream({ ...common, onError: (e) => stats.errors.push(e.code) });
  const dec = await openDecodeStream({ ...common, chunkMs: enc.ready.chunkMs, onError: (e) => stats.errors.push(e.code) });
  const { hopLength, modelSampleRate, codebooks, codebookSize } = enc.ready;
  const samplesPerFrame = (hopLength * ctx.sampleRate) / modelSampleRate;
  const clock = new Clock();

  const canvas = $('raster');
  canvas.height = codebooks;
  const g = canvas.getContext('2d');
  const column = g.createImageData(1, codebooks);

  // ScriptProcessor keeps the page a single file; 2048 samples = ~43 ms at 48 kHz
  const source = ctx.createMediaStreamSource(mic);
  const proc = ctx.createScriptProcessor(2048, 1, 1);
  let captured = 0;
  proc.onaudioprocess = (ev) => {
    const pcm = new Float32Array(ev.inputBuffer.getChannelData(0));
    captured += pcm.length;
    clock.mark(captured);
    try { enc.write(pcm); } catch { /* stream ended; stop() tidies up */ }
  };
  source.connect(proc);
  proc.connect(ctx.destination); // a ScriptProcessor only runs when connected; its output is silence

  let playAt = 0;
  const encLoop = (async () => {
    for await (const packet of enc) {
      const { firstFrame, tokens } = packet;
      stats.framesReceived = firstFrame + tokens.numFrames;
      stats.packets++;
      const sentAt = clock.timeOf(Math.ceil(stats.framesReceived * samplesPerFrame));
      if (sentAt !== undefined) stats.encLatencyMs.push(performance.now() - sentAt);
      if (stats.codes.length < 4096) stats.codes.push(...tokens.codes.slice(0, 64));
      // scroll the raster left by the new frames and paint them
      const n = tokens.numFrames;
      g.drawImage(canvas, -n, 0);
      for (let t = 0; t < n; t++) {
        for (let k = 0; k < codebooks; k++) {
          const v = tokens.codes[k * n + t] / codebookSize;
          const [r, gg, b] = hsl(v);
          column.data.set([r, gg, b, 255], k * 4);
        }
        g.putImageData(column, canvas.width - n + t, 0);
      }
      dec.writePacket(packet);
      $('frames').textContent = String(stats.framesReceived);
      showLatency('encLatency', stats.encLatencyMs);
    }
  })();
  const decLoop = (async () => {
    for await (const { firstSample, pcm } of dec) {
      stats.decodedSamples = firstSample + pcm.length;
      for (const v of pcm) stats.decodedEnergy += v * v;
      const sentAt = clock.timeOf(stats.decodedSamples);
      if (sentAt !== undefined) stats.rtLatencyMs.push(performance.now() - sentAt);
      if ($('play').checked) {
        const buf = ctx.createBuffer(1, pcm.length, ctx.sampleRate);
        buf.copyToChannel(pcm, 0);
        const node = ctx.createBufferSource();
        node.buffer = buf;
        node.connect(ctx.destination);
        playAt = Math.max(playAt, ctx.currentTime + 0.02);
        node.start(playAt);
        playAt += buf.duration;
      }
      $('decoded').textContent = `${(stats.decodedSamples / ctx.sampleRate).toFixed(1)} s`;
      showLatency('rtLatency', stats.rtLatencyMs);
    }
  })();
  const fail = (e) => { stats.errors.push(e.code ?? String(e)); setStatus(`${e.code ?? 'error'}: ${e.message}`, true); };
  encLoop.catch(fail);
  decLoop.catch(fail);

  running = async () => {
    proc.disconnect();
    source.disconnect();
    mic.getTracks().forEach((t) => t.stop());
    await enc.close();
    await encLoop;
    await dec.close();
    await decLoop;
    await ctx.close();
  };
  stats.state = 'running';
  setStatus(`streaming: ${enc.ready.model} ${enc.ready.modelVersion}, ${codebooks} codebooks, ${enc.ready.chunkMs.toFixed(0)} ms chunks`);
  $('stop').disabled = false;
}

function hsl(v) {
  const h = v * 300;
  const f = (n) => { const k = (n + h / 30) % 12; return 255 * (0.5 - 0.45 * Math.max(-1, Math.min(k - 3, 9 - k, 1))); };
  return [f(0), f(8), f(4)];
}

$('start').onclick = () => start().catch((e) => { stats.state = 'failed'; stats.errors.push(e.code ?? String(e)); setStatus(`${e.code ?? 'error'}: ${e.message}`, true); $('start').disabled = false; });
$('stop').onclick = async () => {
  $('stop').disabled = true;
  try { await running?.(); stats.state = 'stopped'; setStatus('stopped'); } catch (e) { stats.errors.push(e.code ?? String(e)); setStatus(String(e.message ?? e), true); }
  $('start').disabled = false;
};
