# FMFA as the paper describes it (arXiv 2509.13754 §3-4): probability-gap A-SDM with alpha 10, lr 1e-5.
_base_ = ["./default.py"]

method = dict(mode="paper", asdm_mode="paper", asdm_alpha=10.0, efa_row_normalise=False)
optim_wrapper = dict(optimizer=dict(lr=1e-5))
