"""The pitch tracker and pitch error measures against signals whose F0 is known by construction.

Synthetic tones, harmonic complexes without their fundamental, silence and noise; a vowel synthesised from a
glottal pulse train with a known gliding F0; and espeak-ng speech from voices whose pitch is pinned (a voice
variant with `pitch B B` has no intonation range: running speech at one nominal F0).
"""
import os
import subprocess
import tempfile
import unittest

import numpy as np
import scipy.io.wavfile as wavfile
from scipy.signal import lfilter

import metrics

RATE = 16000
ESPEAK_DATA = "/usr/lib/x86_64-linux-gnu/espeak-ng-data"
SENTENCE = "The quick brown fox jumps over the lazy dog while we wait here."


def tone(freq, seconds=1.5, rate=RATE):
    t = np.arange(int(seconds * rate)) / rate
    return 0.3 * np.sin(2 * np.pi * freq * t)


def glottal_vowel(f0_of_t, seconds=1.5, rate=RATE, noise_excited=False, seed=0):
    """An /a/-like vowel: Rosenberg glottal pulses at f0_of_t(t) (or white noise, a whisper), lip radiation
    (first difference) and three formant resonators. Returns the audio and the F0 function."""
    t = np.arange(int(seconds * rate)) / rate
    if noise_excited:
        source = np.random.default_rng(seed).standard_normal(t.size)
    else:
        phase = np.cumsum(f0_of_t(t)) / rate  # periods elapsed
        frac = phase % 1.0
        opening, closing = 0.4, 0.16
        source = np.where(frac < opening, 0.5 * (1 - np.cos(np.pi * frac / opening)),
                          np.where(frac < opening + closing, np.cos(0.5 * np.pi * (frac - opening) / closing), 0.0))
        source = np.diff(source, prepend=0.0)
    out = source
    for freq, bandwidth in ((700, 80), (1220, 90), (2600, 120)):
        r = np.exp(-np.pi * bandwidth / rate)
        out = lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * freq / rate), r * r], out)
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.03)
    out = out * fade
    return 0.5 * out / np.abs(out).max()


def frame_times(n):
    return np.arange(n) * metrics.PITCH_HOP_S


def glide(t):
    return 100.0 * 2.2 ** (t / 1.5)  # 100 -> 220 Hz over 1.5 s


class PitchTrackOnSyntheticSignals(unittest.TestCase):
    def test_pure_tones(self):
        for freq in (70, 100, 150, 220, 330, 440):
            f0, voiced = metrics.pitch_track(tone(freq), RATE)
            self.assertGreater(voiced.mean(), 0.95, msg=f"{freq} Hz voiced share")
            self.assertLess(np.abs(f0[voiced] / freq - 1).max(), 0.02, msg=f"{freq} Hz")

    def test_harmonic_complex_without_its_fundamental(self):
        t = np.arange(int(1.5 * RATE)) / RATE
        for freq in (140, 230):
            x = sum(np.sin(2 * np.pi * freq * h * t + h) / h for h in range(2, 11))
            f0, voiced = metrics.pitch_track(x, RATE)
            self.assertGreater(voiced.mean(), 0.95)
            self.assertAlmostEqual(np.median(f0[voiced]), freq, delta=0.01 * freq)
            self.assertGreater(np.mean(np.abs(f0[voiced] / freq - 1) < 0.02), 0.95)

    def test_rate_of_the_input_does_not_matter(self):
        for rate in (16000, 24000, 44100):
            f0, voiced = metrics.pitch_track(tone(180, rate=rate), rate)
            self.assertAlmostEqual(np.median(f0[voiced]), 180, delta=1.0, msg=f"{rate} Hz input")

    def test_silence_and_noise_are_unvoiced(self):
        rng = np.random.default_rng(3)
        # A whisper's narrow formant resonances ring almost periodically now and then: a few frames pass.
        for name, x, most in (("digital silence", np.zeros(RATE), 0.0),
                              ("white noise", 0.3 * rng.standard_normal(RATE), 0.01),
                              ("quiet white noise", 1e-4 * rng.standard_normal(RATE), 0.01),
                              ("whispered vowel", glottal_vowel(glide, noise_excited=True), 0.05)):
            _, voiced = metrics.pitch_track(x, RATE)
            self.assertLessEqual(voiced.mean(), most, msg=name)

    def test_glottal_vowel_follows_known_gliding_f0(self):
        x = glottal_vowel(glide)
        f0, voiced = metrics.pitch_track(x, RATE)
        truth = glide(frame_times(f0.size))
        inner = (frame_times(f0.size) > 0.05) & (frame_times(f0.size) < 1.45)
        self.assertGreater(voiced[inner].mean(), 0.97)
        ok = voiced & inner
        self.assertLess(np.median(np.abs(f0[ok] / truth[ok] - 1)), 0.01)
        self.assertLess(np.mean(np.abs(f0[ok] / truth[ok] - 1) > 0.05), 0.02)

    def test_pauses_between_tones_are_unvoiced(self):
        x = np.concatenate([tone(150, 0.5), np.zeros(RATE // 2), tone(150, 0.5)])
        _, voiced = metrics.pitch_track(x, RATE)
        t = frame_times(voiced.size)
        self.assertTrue(voiced[(t > 0.05) & (t < 0.45)].all())
        self.assertFalse(voiced[(t > 0.55) & (t < 0.95)].any())


class PitchTrackOnSpeech(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        # espeak-ng data with two extra voice variants whose pitch range is zero (links, not copies).
        data = os.path.join(cls.tmp.name, "espeak-ng-data")
        variants = os.path.join(data, "voices", "!v")
        os.makedirs(variants)
        for entry in os.listdir(ESPEAK_DATA):
            if entry != "voices":
                os.symlink(os.path.join(ESPEAK_DATA, entry), os.path.join(data, entry))
        for entry in os.listdir(os.path.join(ESPEAK_DATA, "voices")):
            if entry != "!v":
                os.symlink(os.path.join(ESPEAK_DATA, "voices", entry), os.path.join(data, "voices", entry))
        for entry in os.listdir(os.path.join(ESPEAK_DATA, "voices", "!v")):
            os.symlink(os.path.join(ESPEAK_DATA, "voices", "!v", entry), os.path.join(variants, entry))
        for hz in (120, 200):
            with open(os.path.join(variants, f"flat{hz}"), "w") as f:
                f.write(f"language variant\nname flat{hz}\npitch {hz} {hz}\nflutter 0\n")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def speak(self, *args):
        path = os.path.join(self.tmp.name, "speech.wav")
        subprocess.run(["espeak-ng", "--path", self.tmp.name, *args, "-w", path, SENTENCE], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        rate, pcm = wavfile.read(path)
        return pcm.astype(np.float64) / 32768, rate

    def test_flat_voices_at_their_nominal_pitch(self):
        for hz in (120, 200):
            x, rate = self.speak("-v", f"en+flat{hz}")
            f0, voiced = metrics.pitch_track(x, rate)
            # Running speech: vowels and voiced consonants, with unvoiced consonants and pauses between.
            self.assertTrue(0.4 < voiced.mean() < 0.9, msg=f"voiced share {voiced.mean():.2f}")
            median = np.median(f0[voiced])
            # espeak-ng renders a little under a variant's nominal pitch (111 Hz for 120, 191 for 200).
            self.assertAlmostEqual(median, hz, delta=0.1 * hz)
            self.assertGreater(np.mean(np.abs(f0[voiced] / median - 1) < 0.03), 0.95)

    def test_pitch_setting_moves_f0(self):
        medians = []
        for p in (10, 50, 90):
            x, rate = self.speak("-v", "en", "-p", str(p))
            f0, voiced = metrics.pitch_track(x, rate)
            medians.append(np.median(f0[voiced]))
        self.assertTrue(medians[0] < medians[1] < medians[2], msg=f"median F0 by -p 10/50/90: {medians}")
        self.assertTrue(60 < medians[0] and medians[2] < 200, msg=str(medians))

    def test_error_measures_on_speech(self):
        x, rate = self.speak("-v", "en+flat120")
        self.assertEqual(metrics.pitch_errors(x, x, rate)["vde"], 0.0)
        noisy = x + 10 ** (-25 / 20) * np.std(x) * np.random.default_rng(0).standard_normal(x.size)
        errors = metrics.pitch_errors(x, noisy, rate)
        self.assertLess(errors["vde"], 0.1)
        self.assertLess(errors["gpe"], 0.02)
        higher, _ = self.speak("-v", "en+flat200")
        n = min(x.size, higher.size)
        self.assertGreater(metrics.pitch_errors(x[:n], higher[:n], rate)["gpe"], 0.8)


class PitchErrorMeasures(unittest.TestCase):
    def test_identical_signals(self):
        x = glottal_vowel(glide)
        errors = metrics.pitch_errors(x, x, RATE)
        self.assertEqual((errors["vde"], errors["gpe"]), (0.0, 0.0))
        self.assertGreater(errors["voiced_frames"], 130)

    def test_gross_errors_count_shifts_over_20_percent_only(self):
        x = glottal_vowel(glide)
        small = metrics.pitch_errors(x, glottal_vowel(lambda t: 1.1 * glide(t)), RATE)
        self.assertLess(small["gpe"], 0.03)
        self.assertLess(small["vde"], 0.05)
        large = metrics.pitch_errors(x, glottal_vowel(lambda t: 1.3 * glide(t)), RATE)
        self.assertGreater(large["gpe"], 0.95)
        octave_down = metrics.pitch_errors(x, glottal_vowel(lambda t: 0.5 * glide(t)), RATE)
        self.assertGreater(octave_down["gpe"], 0.9)

    def test_a_whisper_is_a_voicing_error(self):
        x = glottal_vowel(glide)
        errors = metrics.pitch_errors(x, glottal_vowel(glide, noise_excited=True), RATE)
        voiced_share = errors["voiced_frames"] / metrics.pitch_track(x, RATE)[0].size
        self.assertGreater(errors["vde"], 0.9 * voiced_share)
        self.assertTrue(np.isnan(errors["gpe"]) or errors["gpe"] <= 1.0)

    def test_length_mismatch_is_an_error(self):
        x = tone(150)
        with self.assertRaises(ValueError):
            metrics.pitch_errors(x, x[:-1], RATE)


if __name__ == "__main__":
    unittest.main()
