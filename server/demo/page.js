// What the demo pages share (served at /demo/page.js): element lookup, the status line, and the
// microphone, opened raw (no echo cancellation, noise suppression or gain control) so tokens see real audio.
export const $ = (id) => document.getElementById(id);

export function setStatus(text, error = false) {
  $('status').textContent = text;
  $('status').className = error ? 'error' : '';
}

/** A running AudioContext and the mono microphone stream; call from a user gesture. */
export async function openMicrophone() {
  const ctx = new AudioContext();
  await ctx.resume();
  const mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 } });
  return { ctx, mic };
}
