// Speaker: microphone -> /v1/rooms/publish (an encode stream relayed to the room). Only the documented
// protocol and the TypeScript client (served at /demo/src/clients/ts/) are used.
import { openRoomPublisher } from '../src/clients/ts/room-client.js';
import { $, openMicrophone, setStatus } from '../page.js';

const params = new URLSearchParams(location.search);
for (const f of ['key', 'room', 'label', 'codebooks', 'chunk']) if (params.get(f)) $(f).value = params.get(f);
$('listenerLink').href = `listener.html?room=${encodeURIComponent($('room').value)}`;

/** Figures the end-to-end test reads; `captured` holds what was sent (first 60 s). */
const stats = (window.__speaker = { state: 'idle', errors: [], sampleRate: 0, epochMs: 0, samplesSent: 0, frames: 0, tokenBytes: 0, captured: [], chunkMs: 0, tokensMs: [] });
const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
window.__speakerDump = () => ({ ...stats, captured: stats.captured.flatMap((c) => Array.from(c)) });

let stop;

async function start() {
  $('start').disabled = true;
  setStatus('starting…');
  const { ctx, mic } = await openMicrophone();
  stats.sampleRate = ctx.sampleRate;
  // capture starts first: its first block fixes the wall-clock time of sample 0 (listeners measure latency from it)
  const pending = [];
  let pub;
  let captured = 0;
  const source = ctx.createMediaStreamSource(mic);
  // capture blocks no longer than a chunk: a chunk's last sample should not wait for the rest of a block
  const chunkMs = Number($('chunk').value);
  const block = 2 ** Math.max(8, Math.min(14, Math.floor(Math.log2((chunkMs / 1000) * ctx.sampleRate))));
  const proc = ctx.createScriptProcessor(block, 1, 1);
  const firstBlock = new Promise((resolve) => {
    proc.onaudioprocess = (ev) => {
      const pcm = new Float32Array(ev.inputBuffer.getChannelData(0));
      if (!stats.epochMs) {
        stats.epochMs = performance.timeOrigin + performance.now() - (pcm.length / ctx.sampleRate) * 1000;
        resolve();
      }
      if (captured < 60 * ctx.sampleRate) stats.captured.push(pcm);
      captured += pcm.length;
      if (!pub) return void pending.push(pcm);
      send(pcm);
    };
  });
  const send = (pcm) => {
    try { pub.write(pcm); stats.samplesSent += pcm.length; } catch { /* stream ended; stop() tidies up */ }
  };
  source.connect(proc);
  proc.connect(ctx.destination); // a ScriptProcessor only runs when connected; its output is silence
  await firstBlock;

  const release = () => {
    proc.disconnect();
    source.disconnect();
    mic.getTracks().forEach((t) => t.stop());
    return ctx.close();
  };
  pub = await openRoomPublisher({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/rooms/publish`, apiKey: $('key').value || undefined, keyVia: 'protocol',
    room: $('room').value, label: $('label').value, epochMs: stats.epochMs, sampleRate: ctx.sampleRate, format: 'f32le',
    codebooks: Number($('codebooks').value), chunkMs, onError: (e) => stats.errors.push(e.code),
  }).catch(async (e) => {
    await release(); // refused (wrong key, full room): the microphone goes off again
    throw e;
  });
  for (const pcm of pending.splice(0)) send(pcm);
  const started = performance.now();
  const echo = (async () => {
    for await (const p of pub) {
      stats.frames = p.firstFrame + p.tokens.numFrames;
      // capture of the packet's last sample -> its tokens back here (the server's part of mouth-to-ear)
      stats.tokensMs.push(performance.timeOrigin + performance.now() - (stats.epochMs + (stats.frames / pub.ready.frameRate) * 1000));
      if (stats.tokensMs.length > 2000) stats.tokensMs.splice(0, 1000);
      $('latency').textContent = `${quantile(stats.tokensMs, 0.5).toFixed(0)} / ${quantile(stats.tokensMs, 0.99).toFixed(0)} ms`;
      stats.tokenBytes += 16 + p.tokens.codes.length * pub.ready.codeBytes;
      $('frames').textContent = String(stats.frames);
      $('sent').textContent = `${(stats.samplesSent / ctx.sampleRate).toFixed(1)} s`;
      const sec = stats.frames / pub.ready.frameRate;
      $('bitrate').textContent = `${((stats.tokenBytes * 8) / sec / 1000).toFixed(1)} kbit/s`;
    }
  })();
  echo.catch((e) => { stats.errors.push(e.code ?? String(e)); setStatus(`${e.code ?? 'error'}: ${e.message}`, true); });

  stop = async () => {
    proc.disconnect(); // no more audio; the stream's tail is flushed by close()
    await pub.close();
    await echo;
    await release();
    stats.seconds = (performance.now() - started) / 1000;
  };
  stats.chunkMs = pub.ready.chunkMs;
  stats.state = 'running';
  setStatus(`speaking in room "${pub.ready.room}" as publisher ${pub.ready.publisher}: ${pub.ready.model}, ${pub.ready.codebooks} codebooks, ${pub.ready.chunkMs.toFixed(0)} ms chunks`);
  $('stop').disabled = false;
}

$('start').onclick = () => start().catch((e) => { stats.state = 'failed'; stats.errors.push(e.code ?? String(e)); setStatus(`${e.code ?? 'error'}: ${e.message}`, true); $('start').disabled = false; });
$('stop').onclick = async () => {
  $('stop').disabled = true;
  try { await stop?.(); stats.state = 'stopped'; setStatus('stopped'); } catch (e) { stats.errors.push(e.code ?? String(e)); setStatus(String(e.message ?? e), true); }
  $('start').disabled = false;
};
