"""WavTokenizer in plain PyTorch, shaped after the released checkpoints.

Module paths mirror the keys of the released PyTorch-Lightning checkpoints
(`feature_extractor.encodec.encoder.model.N...`, `backbone...`, `head...`), so a
released `state_dict` loads with `load_state_dict(strict=True)` and a random
model saves in the same layout. Every size comes from the checkpoint's tensor
shapes (and is cross-checked against the yaml config), so all released sizes
and both frame rates build from the same code.

    config.py      sizes inferred from a checkpoint's tensor shapes, cross-checked against the yaml
    encoder.py     SEANet encoder (audio -> embeddings) and its receptive field
    quantizer.py   the codebook (embeddings -> codes, codes -> embeddings)
    backbone.py    Vocos backbone (embeddings -> frame features)
    head.py        iSTFT head (frame features -> audio)
    model.py       WavTokenizer: the parts assembled under the checkpoint's key layout
    modes.py       reference / exportable execution modes, weight-norm folding
    checkpoint.py  loading a released checkpoint without the training stack installed
"""
