"""The spectrogram pictures: the PNG writer's bytes decode back to the pixels, and a tone lands on its row."""
import os
import struct
import tempfile
import unittest
import zlib

import numpy as np

import spectrograms

RATE = 24000


def read_png(path):
    """Minimal reader for what write_png emits (RGB, 8 bit, filter 0 or 1 rows), following the PNG spec."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        length, tag = struct.unpack(">I4s", data[pos: pos + 8])
        body = data[pos + 8: pos + 8 + length]
        crc, = struct.unpack(">I", data[pos + 8 + length: pos + 12 + length])
        assert crc == zlib.crc32(tag + body) & 0xFFFFFFFF, tag
        chunks[tag] = chunks.get(tag, b"") + body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, colour, interlace) == (8, 2, 0)
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8).reshape(height, 1 + width * 3)
    rows = []
    for filt, row in zip(raw[:, 0], raw[:, 1:]):
        row = row.astype(np.int64)
        if filt == 1:
            for i in range(3, row.size):
                row[i] = (row[i] + row[i - 3]) % 256
        else:
            assert filt == 0
        rows.append(row)
    return np.array(rows, dtype=np.uint8).reshape(height, width, 3), b"IEND" in chunks


class PngWriter(unittest.TestCase):
    def test_round_trip(self):
        rgb = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "x.png")
            spectrograms.write_png(path, rgb)
            back, ended = read_png(path)
        self.assertTrue(ended)
        np.testing.assert_array_equal(back, rgb)


class Pictures(unittest.TestCase):
    def test_tone_is_brightest_on_its_row(self):
        t = np.arange(RATE) / RATE
        db = spectrograms.spectrogram_db(0.5 * np.sin(2 * np.pi * 1500 * t), RATE)
        self.assertEqual(db.shape[0], int(spectrograms.TOP_HZ * spectrograms.NFFT / RATE) + 1)
        self.assertEqual(int(np.argmax(db.mean(axis=1))), round(1500 * spectrograms.NFFT / RATE))
        rgb = spectrograms.picture(db, RATE)
        self.assertEqual(rgb.shape, (db.shape[0], db.shape[1] * spectrograms.COLUMN_PX, 3))
        brightness = rgb[:, 10:].sum(axis=(1, 2))
        self.assertEqual(int(np.argmax(brightness)), db.shape[0] - 1 - round(1500 * spectrograms.NFFT / RATE))

    def test_silence_is_the_floor_colour(self):
        rgb = spectrograms.picture(spectrograms.spectrogram_db(np.zeros(RATE // 2), RATE), RATE)
        np.testing.assert_array_equal(rgb[:, 10:].reshape(-1, 3).max(axis=0), spectrograms.STOPS[0])


if __name__ == "__main__":
    unittest.main()
