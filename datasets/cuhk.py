# CUHK-PEDES in its public layout; pass --data-root or set dataset.root.
dataset = dict(type="cuhk", root="data/CUHK-PEDES")
