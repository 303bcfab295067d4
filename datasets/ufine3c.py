# UFine3C: evaluation only (use with `harness eval`, or as a cross-domain target: the top-level
# `cross_domain = [dict(type="ufine3c", root=...)]` list of a run config).
dataset = dict(type="ufine3c", root="data/UFine3C")
