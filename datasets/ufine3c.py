# UFine3C: evaluation only (use with `harness eval`, or as a cross-domain target in eval.cross_domain).
dataset = dict(type="ufine3c", root="data/UFine3C")
