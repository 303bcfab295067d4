# UFine6926 in its public layout; pass --data-root or set dataset.root.
dataset = dict(type="ufine6926", root="data/UFine6926")
