# IVT on ICFG-PEDES (train_icfg_gpu.py): as default.py, plus the released caption rule: a caption over 90 words is
# cut before its 91st word (datasets/icfg_pedes.py:79-92; training only, the harness never edits the test split).
_base_ = ["./default.py"]  # the harness merges datasets/icfg.py underneath

method = dict(caption_filter=dict(max_words=90, overflow="truncate"))
