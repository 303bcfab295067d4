# IVT on RSTPReid (train_rstp.py): stride 16 (24 x 8 = 192 tokens), 48 samples per batch on one GPU.
_base_ = ["./default.py"]  # the harness merges datasets/rstp.py underneath

method = dict(stride=16)
train = dict(batch_size=48)
