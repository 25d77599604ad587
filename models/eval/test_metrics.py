"""Pinned known behaviour of the evaluation metrics (run: /usr/bin/python3 -m unittest discover -s models/eval)."""
import unittest

import numpy as np

import metrics

RATE = 16000


def speech_like(seconds=3.0, rate=RATE, seed=0):
    """Voiced syllables (gliding f0, moving formants) separated by pauses: deterministic, no data files."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    formant1 = 500 + 250 * np.sin(2 * np.pi * 2.1 * t)
    formant2 = 1500 + 700 * np.sin(2 * np.pi * 1.3 * t + 1)
    voice = np.zeros_like(t)
    for h in range(1, 40):
        freq = h * f0
        gain = np.exp(-((freq - formant1) / 200) ** 2) + 0.5 * np.exp(-((freq - formant2) / 300) ** 2) + 0.02
        voice += gain * np.sin(h * phase) * (freq < rate / 2)
    syllables = np.maximum(0.0, np.sin(2 * np.pi * 2.5 * t)) ** 2
    signal = voice * syllables + 1e-4 * rng.standard_normal(t.size)
    return 0.5 * signal / np.abs(signal).max()


def add_white_noise(clean, snr_db, seed=1):
    noise = np.random.default_rng(seed).standard_normal(clean.size)
    noise *= np.linalg.norm(clean) / np.linalg.norm(noise) * 10 ** (-snr_db / 20)
    return clean + noise


class IdenticalSignals(unittest.TestCase):
    def setUp(self):
        self.x = speech_like()

    def test_stoi_is_one(self):
        self.assertGreater(metrics.stoi(self.x, self.x, RATE), 0.9999)

    def test_si_sdr_is_very_high(self):
        self.assertGreater(metrics.si_sdr(self.x, self.x), 100.0)

    def test_distances_are_zero(self):
        self.assertEqual(metrics.log_mel_distance(self.x, self.x, RATE), 0.0)
        self.assertEqual(metrics.multi_resolution_stft_distance(self.x, self.x, RATE), 0.0)


class WhiteNoiseAtKnownSnr(unittest.TestCase):
    SNRS = (30, 20, 10, 5, 0, -5, -10)

    @classmethod
    def setUpClass(cls):
        cls.x = speech_like()
        cls.noisy = {snr: add_white_noise(cls.x, snr) for snr in cls.SNRS}

    def test_si_sdr_matches_snr(self):
        for snr, y in self.noisy.items():
            self.assertAlmostEqual(metrics.si_sdr(self.x, y), snr, delta=0.5, msg=f"SNR {snr} dB")

    def test_stoi_falls_monotonically_as_snr_falls(self):
        scores = [metrics.stoi(self.x, self.noisy[snr], RATE) for snr in self.SNRS]
        for higher, lower in zip(scores, scores[1:]):
            self.assertGreater(higher, lower, msg=f"STOI by SNR {list(zip(self.SNRS, scores))}")

    def test_stoi_pinned_ranges(self):
        # Ranges measured on this signal; wide enough for resampler and float differences, tight enough to catch a
        # broken band mapping, clipping or silence removal.
        self.assertGreater(metrics.stoi(self.x, self.noisy[30], RATE), 0.98)
        self.assertTrue(0.75 < metrics.stoi(self.x, self.noisy[0], RATE) < 0.95)
        self.assertTrue(0.5 < metrics.stoi(self.x, self.noisy[-10], RATE) < 0.85)

    def test_distances_grow_as_snr_falls(self):
        for fn in (metrics.log_mel_distance, metrics.multi_resolution_stft_distance):
            values = [fn(self.x, self.noisy[snr], RATE) for snr in self.SNRS]
            for higher_snr, lower_snr in zip(values, values[1:]):
                self.assertLess(higher_snr, lower_snr, msg=f"{fn.__name__} {values}")


class Invariances(unittest.TestCase):
    def setUp(self):
        self.x = speech_like()
        self.y = add_white_noise(self.x, 5)

    def test_si_sdr_ignores_scale_of_estimate(self):
        base = metrics.si_sdr(self.x, self.y)
        for gain in (0.01, 0.5, 3.0, 100.0):
            self.assertAlmostEqual(metrics.si_sdr(self.x, gain * self.y), base, places=6)

    def test_si_sdr_of_scaled_copy_is_very_high(self):
        self.assertGreater(metrics.si_sdr(self.x, 0.3 * self.x), 100.0)

    def test_stoi_ignores_scale_of_degraded(self):
        base = metrics.stoi(self.x, self.y, RATE)
        self.assertAlmostEqual(metrics.stoi(self.x, 4.0 * self.y, RATE), base, places=6)

    def test_stoi_same_at_other_input_rate(self):
        # STOI works at 10 kHz internally, so the input rate should barely matter.
        x24 = metrics.resample(self.x, RATE, 24000)
        y24 = metrics.resample(self.y, RATE, 24000)
        self.assertAlmostEqual(metrics.stoi(x24, y24, 24000), metrics.stoi(self.x, self.y, RATE), delta=0.01)

    def test_length_mismatch_is_an_error(self):
        with self.assertRaises(ValueError):
            metrics.stoi(self.x, self.y[:-1], RATE)
        with self.assertRaises(ValueError):
            metrics.si_sdr(self.x, self.y[:-1])


class Helpers(unittest.TestCase):
    def test_delay_is_recovered_and_aligned(self):
        x = speech_like()
        for delay in (0, 37, -25):
            shifted = np.concatenate([np.zeros(delay), x])[: x.size] if delay >= 0 else x[-delay:]
            found = metrics.estimate_delay(x, shifted, 400)
            self.assertEqual(found, delay)
            ref, est = metrics.align(x, shifted, found)
            self.assertGreater(metrics.si_sdr(ref, est), 100.0)

    def test_codebook_usage(self):
        used, perplexity = metrics.codebook_usage(np.arange(1000) % 8, 1024)
        self.assertEqual(used, 8)
        self.assertAlmostEqual(perplexity, 8.0, places=6)
        used, perplexity = metrics.codebook_usage(np.zeros(50, dtype=np.int64), 1024)
        self.assertEqual((used, perplexity), (1, 1.0))

    def test_mel_filterbank_covers_band(self):
        fb = metrics.mel_filterbank(RATE, 1024, 80)
        self.assertEqual(fb.shape, (80, 513))
        self.assertTrue(np.all(fb.max(axis=1) > 0.5))
        self.assertTrue(np.all(fb.sum(axis=0)[5:-5] > 0))


if __name__ == "__main__":
    unittest.main()
