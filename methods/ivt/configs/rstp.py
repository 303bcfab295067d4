# IVT on RSTPReid (train_rstp.py): stride 16 (24 x 8 = 192 tokens), 48 samples per batch on one GPU.
_base_ = ["./default.py"]  # the harness merges datasets/rstp.py underneath

# Captions over 90 words are dropped (datasets/rstp_reid.py:82-92; training only, the test split is never edited).
method = dict(stride=16, caption_filter=dict(max_words=90, overflow="drop"))
train = dict(batch_size=48)
