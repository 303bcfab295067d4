# Built-in procedural dataset (CUHK-PEDES layout, generated on first use under $TIPR_CACHE).
dataset = dict(type="synth")
# evaluated after training as well: the UFine3C-format synthetic cross-domain set
cross_domain = [dict(type="synth3c")]
