# RSTPReid in its public layout; pass --data-root or set dataset.root.
dataset = dict(type="rstp", root="data/RSTPReid")
