#!/usr/bin/env python3
"""Reader for tokstream .tok token files (byte layout: docs/tok-format.md).

Needs only the standard library, plus numpy for the token array. As a module:

    from tokstream_reader import read_tok
    header, codes = read_tok("speech.tok")   # codes: numpy int64 array [codebooks, frames]

As a command:

    tokstream_reader.py speech.tok                       # header and totals as JSON (checks every CRC; no numpy)
    tokstream_reader.py speech.tok --dump-npy codes.npy  # tokens as a .npy file [codebooks, frames]

Every checksum and length is verified: a corrupted file raises TokFormatError (exit status 1),
a cut-off file too unless allow_truncated / --allow-truncated asks for its intact prefix.
"""
import argparse
import json
import struct
import sys
import zlib

MAGIC = b"\x89TOK\r\n\x1a\n"
SUPPORTED_MAJOR = 1
TAG_CHUNK = b"TCHK"
TAG_INDEX = b"TIDX"
TAG_END = b"TEND"
UNKNOWN_LENGTH = 2**64 - 1
HEADER_FIXED_BODY = 59
MAX_HEADER_BYTES = 1 << 20
MAX_CHUNK_BYTES = 64 << 20


class TokFormatError(ValueError):
    """The file is not a valid .tok file; `code` names the problem as the TypeScript reader does."""

    def __init__(self, code, message, offset=None):
        where = "" if offset is None else " at byte %d" % offset
        super().__init__(".tok %s%s: %s" % (code, where, message))
        self.code = code
        self.offset = offset


def bits_per_code(codebook_size):
    bits = 1
    while (1 << bits) < codebook_size:
        bits += 1
    return bits


def _packed_length(count, bits):
    return (count * bits + 7) // 8


def _crc_ok(data, start, end):
    return zlib.crc32(data[start:end]) == struct.unpack_from("<I", data, end)[0]


def _need(data, end, what):
    if len(data) < end:
        raise TokFormatError("truncated", "file ends inside the %s" % what, len(data))


def _parse_header(data):
    if data[: len(MAGIC)] != MAGIC[: min(len(data), len(MAGIC))]:
        raise TokFormatError("bad_magic", "not a .tok file (magic bytes differ)", 0)
    _need(data, 16, "header prefix")
    major, minor, reserved, body_length = struct.unpack_from("<BBHI", data, 8)
    if major != SUPPORTED_MAJOR:
        raise TokFormatError("unsupported_version", "format version %d.%d; this reader supports %d.x" % (major, minor, SUPPORTED_MAJOR), 8)
    if body_length > MAX_HEADER_BYTES:
        raise TokFormatError("limit_exceeded", "header body of %d bytes" % body_length, 12)
    end = 16 + body_length
    _need(data, end + 4, "header")
    if not _crc_ok(data, 0, end):
        raise TokFormatError("header_crc", "header checksum mismatch", end)
    if reserved != 0:
        raise TokFormatError("bad_header", "reserved bytes are not zero", 10)
    if body_length < HEADER_FIXED_BODY:
        raise TokFormatError("bad_header", "header body too short", 12)
    sample_rate, hop, size, fpc, orig_rate, books = struct.unpack_from("<IIIIIH", data, 16)
    sha = bytes(data[38:70]).hex()
    name_length = data[70]
    if HEADER_FIXED_BODY + name_length > body_length:
        raise TokFormatError("bad_header", "model name runs past the header", 70)
    (meta_length,) = struct.unpack_from("<I", data, 71 + name_length)
    used = HEADER_FIXED_BODY + name_length + meta_length
    if used > body_length or (minor == 0 and used != body_length):
        raise TokFormatError("bad_header", "metadata length disagrees with the header length", 71 + name_length)
    try:
        name = bytes(data[71 : 71 + name_length]).decode("utf-8")
        meta_bytes = bytes(data[75 + name_length : 75 + name_length + meta_length])
        metadata = json.loads(meta_bytes.decode("utf-8")) if meta_length else {}
    except (UnicodeDecodeError, ValueError):
        raise TokFormatError("bad_header", "model name or metadata is not valid UTF-8 JSON", 70) from None
    if not isinstance(metadata, dict):
        raise TokFormatError("bad_header", "metadata is not a JSON object", 75 + name_length)
    if not name or 0 in (sample_rate, hop, fpc, orig_rate, books) or not 2 <= size <= 2**31:
        raise TokFormatError("bad_header", "a header field is out of range", 16)
    bits = bits_per_code(size)
    if _packed_length(fpc * books, bits) > MAX_CHUNK_BYTES:
        raise TokFormatError("limit_exceeded", "chunks larger than %d bytes" % MAX_CHUNK_BYTES, 28)
    return {
        "version": [major, minor],
        "model_name": name,
        "model_sha256": sha,
        "sample_rate": sample_rate,
        "hop_length": hop,
        "num_codebooks": books,
        "codebook_size": size,
        "bits_per_code": bits,
        "frames_per_chunk": fpc,
        "original_sample_rate": orig_rate,
        "metadata": metadata,
        "header_length": end + 4,
    }


def _parse_blocks(data, header, allow_truncated):
    """Walks chunks, index and footer. Returns (chunks, trailer or None, problem or None)."""
    books, bits, fpc = header["num_codebooks"], header["bits_per_code"], header["frames_per_chunk"]
    pos = header["header_length"]
    chunks = []  # (offset, first_frame, num_frames)
    frames = 0
    try:
        while True:
            if pos == len(data):
                raise TokFormatError("truncated", "no index after %d chunks: the stream was cut off" % len(chunks), pos)
            _need(data, pos + 8, "block prefix")
            tag = bytes(data[pos : pos + 4])
            (body_length,) = struct.unpack_from("<I", data, pos + 4)
            if tag == TAG_CHUNK:
                if body_length < 9 or body_length > 8 + _packed_length(fpc * books, bits):
                    raise TokFormatError("bad_chunk", "impossible chunk length %d" % body_length, pos + 4)
                end = pos + 8 + body_length
                _need(data, end + 4, "chunk")
                if not _crc_ok(data, pos, end):
                    raise TokFormatError("chunk_crc", "chunk checksum mismatch", pos)
                first, count = struct.unpack_from("<II", data, pos + 8)
                if not 1 <= count <= fpc or body_length != 8 + _packed_length(count * books, bits):
                    raise TokFormatError("bad_chunk", "chunk of %d frames has %d body bytes" % (count, body_length), pos + 12)
                if first != frames:
                    raise TokFormatError("bad_chunk", "chunk starts at frame %d, expected %d" % (first, frames), pos + 8)
                chunks.append((pos, first, count))
                frames += count
                pos = end + 4
            elif tag == TAG_INDEX:
                if body_length != 16 + 16 * len(chunks):
                    raise TokFormatError("bad_index", "index body of %d bytes after %d chunks" % (body_length, len(chunks)), pos + 4)
                end = pos + 8 + body_length
                _need(data, end + 4, "index")
                if not _crc_ok(data, pos, end):
                    raise TokFormatError("index_crc", "index checksum mismatch", pos)
                total, n, original_length = struct.unpack_from("<IIQ", data, pos + 8)
                entries = [struct.unpack_from("<QII", data, pos + 24 + 16 * i) for i in range(n)]
                if n != len(chunks) or total != frames or entries != chunks:
                    raise TokFormatError("bad_index", "index disagrees with the chunks", pos)
                index_offset = pos
                pos = end + 4
                _need(data, pos + 16, "footer")
                if bytes(data[pos + 8 : pos + 12]) != TAG_END:
                    raise TokFormatError("bad_footer", "expected the footer (TEND)", pos + 8)
                if not _crc_ok(data, pos, pos + 12):
                    raise TokFormatError("footer_crc", "footer checksum mismatch", pos)
                if struct.unpack_from("<Q", data, pos)[0] != index_offset:
                    raise TokFormatError("bad_footer", "footer does not point at the index", pos)
                if len(data) > pos + 16:
                    raise TokFormatError("trailing_data", "%d bytes after the footer" % (len(data) - pos - 16), pos + 16)
                trailer = {"total_frames": total, "original_length": None if original_length == UNKNOWN_LENGTH else original_length}
                return chunks, trailer, None
            else:
                raise TokFormatError("bad_chunk", "unknown block tag %r" % tag, pos)
    except TokFormatError as err:
        if allow_truncated and err.code == "truncated":
            return chunks, None, err
        raise


def _read(data, allow_truncated):
    header = _parse_header(data)
    chunks, trailer, problem = _parse_blocks(data, header, allow_truncated)
    header["num_chunks"] = len(chunks)
    header["total_frames"] = sum(c[2] for c in chunks)
    header["original_length"] = trailer["original_length"] if trailer else None
    header["complete"] = trailer is not None
    header["problem"] = str(problem) if problem else None
    return header, chunks


def read_tok_header(source, allow_truncated=False):
    """Header and totals of a .tok file (path or bytes), every CRC checked; numpy not needed."""
    return _read(_load(source), allow_truncated)[0]


def read_tok(source, allow_truncated=False):
    """(header dict, codes) for a .tok file given as a path or bytes; codes is int64 [codebooks, frames]."""
    try:
        import numpy as np
    except ImportError:
        raise RuntimeError("numpy is required to decode .tok tokens (header-only use works without it)") from None
    data = _load(source)
    header, chunks = _read(data, allow_truncated)
    books, bits, size = header["num_codebooks"], header["bits_per_code"], header["codebook_size"]
    codes = np.empty((books, header["total_frames"]), dtype=np.int64)
    weights = np.left_shift(np.int64(1), np.arange(bits, dtype=np.int64))
    for offset, first, count in chunks:
        payload = np.frombuffer(data, dtype=np.uint8, count=_packed_length(count * books, bits), offset=offset + 16)
        stream = np.unpackbits(payload, bitorder="little")
        if stream[count * books * bits :].any():
            raise TokFormatError("bad_chunk", "padding bits are not zero", offset)
        values = stream[: count * books * bits].reshape(books * count, bits).astype(np.int64) @ weights
        if values.max() >= size:
            raise TokFormatError("code_out_of_range", "code %d in a codebook of %d" % (values.max(), size), offset + 16)
        codes[:, first : first + count] = values.reshape(books, count)
    return header, codes


def _load(source):
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    with open(source, "rb") as f:
        return f.read()


def main(argv=None):
    ap = argparse.ArgumentParser(description="Read a tokstream .tok token file.")
    ap.add_argument("file")
    ap.add_argument("--dump-npy", metavar="OUT", help="write the tokens as int64 [codebooks, frames] to OUT (.npy)")
    ap.add_argument("--allow-truncated", action="store_true", help="read the intact prefix of a cut-off file")
    args = ap.parse_args(argv)
    try:
        if args.dump_npy:
            import numpy as np

            header, codes = read_tok(args.file, args.allow_truncated)
            np.save(args.dump_npy, codes)
        else:
            header = read_tok_header(args.file, args.allow_truncated)
    except TokFormatError as err:
        print("error: %s" % err, file=sys.stderr)
        return 1
    except (ImportError, RuntimeError) as err:
        print("error: %s" % err, file=sys.stderr)
        return 2
    except OSError as err:
        print("error: %s" % err, file=sys.stderr)
        return 2
    print(json.dumps(header, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
