# FMFA as the paper describes it (arXiv 2509.13754 §3-4.1): probability-gap A-SDM (alpha 10), lr 1e-5, no row
# normalisation in EFA. The EFA margins (Table 1), alpha on RSTPReid and the ICFG-PEDES epochs are per dataset:
# run paper_cuhk.py, paper_icfg.py or paper_rstp.py, which set them and name their dataset.
_base_ = ["./default.py"]

# efa_margins=None: this file alone (or with --dataset) is refused until the margins are set
method = dict(asdm_mode="paper", asdm_alpha=10.0, efa_margins=None, efa_row_normalise=False)
optim_wrapper = dict(optimizer=dict(lr=1e-5))
