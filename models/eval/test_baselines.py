"""Real Opus (ffmpeg libopus) and Codec2 (c2enc/c2dec) round trips on a short synthetic signal."""
import tempfile
import unittest

import baselines
import metrics
from test_metrics import speech_like

RATE = 24000


class RoundTrips(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.x = speech_like(seconds=2.0, rate=RATE)
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_opus_keeps_length_alignment_and_bitrate(self):
        y, bits = baselines.opus_round_trip(self.x, RATE, 12000, self.tmp.name, "clip")
        self.assertEqual(y.size, self.x.size)
        # ffmpeg applies the Ogg pre-skip: no more than a few samples of residual delay.
        self.assertLessEqual(abs(metrics.estimate_delay(self.x, y, 2400)), 5)
        self.assertGreater(metrics.stoi(self.x, y, RATE), 0.8)
        self.assertTrue(6000 < bits / 2.0 < 16000, f"{bits / 2.0:.0f} bit/s")

    def test_higher_opus_bitrate_is_closer(self):
        low, _ = baselines.opus_round_trip(self.x, RATE, 6000, self.tmp.name, "clip")
        high, _ = baselines.opus_round_trip(self.x, RATE, 12000, self.tmp.name, "clip")
        self.assertLess(metrics.log_mel_distance(self.x, high, RATE), metrics.log_mel_distance(self.x, low, RATE))

    def test_codec2_keeps_length_and_bitrate(self):
        for mode in baselines.CODEC2_MODES:
            y, bits = baselines.codec2_round_trip(self.x, RATE, mode, self.tmp.name, "clip")
            self.assertEqual(y.size, self.x.size)
            self.assertAlmostEqual(bits / 2.0, mode, delta=0.1 * mode)
            delay = metrics.estimate_delay(self.x, y, 2400)
            ref, est = metrics.align(self.x, y, delay)
            self.assertGreater(metrics.stoi(ref, est, RATE), 0.5, f"Codec2 {mode}")


if __name__ == "__main__":
    unittest.main()
