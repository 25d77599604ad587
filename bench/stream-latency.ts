import WebSocket from 'ws';
import { openEncodeStream, type WebSocketCtor } from '../clients/ts/client.js';

/** The p-th fraction (0..1) of `xs` (nearest rank). */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
}

/**
 * A real-time encode stream (80 ms chunks of 24 kHz f32 `pcm`, paced by the clock) against `wsUrl`;
 * resolves to each token packet's latency in ms: from when its last sample was sent to its arrival.
 */
export async function realtimeStreamLatencies(wsUrl: string, pcm: Float32Array, hopLength: number): Promise<number[]> {
  const enc = await openEncodeStream({ url: wsUrl, WebSocket: WebSocket as unknown as WebSocketCtor, sampleRate: 24000, format: 'f32le', chunkMs: 80 });
  const sentAt: number[] = []; // wall time at which sample i*1920 was sent
  const latencies: number[] = [];
  const reader = (async () => {
    for await (const p of enc) {
      // a packet's frames are final once their last sample was sent: latency from then to arrival
      const lastSample = (p.firstFrame + p.tokens.numFrames) * hopLength - 1;
      const sent = sentAt[Math.floor(lastSample / 1920)];
      if (sent !== undefined) latencies.push(performance.now() - sent);
    }
  })();
  const start = performance.now();
  for (let i = 0, k = 0; i < pcm.length; i += 1920, k++) {
    const due = start + k * 80;
    await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
    sentAt[k] = performance.now();
    enc.write(pcm.subarray(i, i + 1920));
  }
  await enc.close();
  await reader;
  return latencies;
}
