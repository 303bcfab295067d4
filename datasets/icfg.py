# ICFG-PEDES in its public layout; pass --data-root or set dataset.root.
dataset = dict(type="icfg", root="data/ICFG-PEDES")
