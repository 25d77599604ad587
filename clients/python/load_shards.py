"""Read `tokstream prep` shards with nothing but the standard library and numpy.

    from load_shards import iter_dataset
    for key, tokens, meta in iter_dataset("out/"):   # tokens: uint16 [codebooks, frames]
        ...

Run as a script to print one JSON line per sample (used by the test suite):
    python3 load_shards.py OUT_DIR
"""
import io
import json
import os
import sys
import tarfile

import numpy as np


def iter_shard(path):
    """Yields (key, tokens, meta) for every sample of one tar shard, in shard order."""
    pending = {}
    with tarfile.open(path, mode="r:") as tar:
        for member in tar:
            if not member.isfile():
                continue
            # WebDataset convention: the key is everything before the first dot of the name
            key, _, field = member.name.partition(".")
            data = tar.extractfile(member).read()
            sample = pending.setdefault(key, {})
            if field == "tokens.npy":
                sample["tokens"] = np.load(io.BytesIO(data), allow_pickle=False)
            elif field == "json":
                sample["meta"] = json.loads(data)
            if "tokens" in sample and "meta" in sample:
                del pending[key]
                yield key, sample["tokens"], sample["meta"]
    if pending:
        raise ValueError(f"{path}: incomplete samples {sorted(pending)}")


def iter_dataset(out_dir):
    """Yields (key, tokens, meta) over every shard listed in OUT_DIR/shards.txt."""
    with open(os.path.join(out_dir, "shards.txt")) as f:
        shards = [line.strip() for line in f if line.strip()]
    for shard in shards:
        yield from iter_shard(os.path.join(out_dir, shard))


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    for key, tokens, meta in iter_dataset(argv[1]):
        print(json.dumps({
            "key": key,
            "dtype": str(tokens.dtype),
            "shape": list(tokens.shape),
            "sum": int(tokens.astype(np.int64).sum()),
            "first": tokens[:, :4].tolist(),
            "meta_key": meta["key"],
            "frames": meta["frames"],
            "codebooks": meta["codebooks"],
            "model": meta["model"]["name"],
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
