# Runtime defaults shared by every method config (mmengine Python config).
seed = 0
# True (mmengine set_random_seed): cudnn.deterministic=True, cudnn.benchmark=False and
# torch.use_deterministic_algorithms(True): ops switch to deterministic kernels, and an op that has none on
# CUDA raises instead of running; harness runs also set CUBLAS_WORKSPACE_CONFIG=:4096:8 for cuBLAS. Cost on
# a GPU: no cuDNN autotuning and slower deterministic kernels for some ops (e.g. index_add/scatter_add,
# embedding backward); set False for speed when bit-identical reruns are not needed. A CPU is hardly affected.
deterministic = True
work_root = "work_dirs"
results_dir = "results"

train = dict(
    epochs=60,
    batch_size=64,
    num_workers="auto",  # "auto": up to 8 with a CUDA GPU, 0 without one (harness/engine/loaders.py)
    pin_memory=True,  # page-locked batches for asynchronous host-to-GPU copies (no effect without CUDA)
    persistent_workers=True,  # keep loader workers between epochs (only with num_workers > 0)
    amp="off",  # "off" | "bf16" | "fp16" (CUDA only, dynamic loss scaling): training and evaluation encoding
    tensorboard=False,  # also write TensorBoard event files (needs `pip install tensorboard`)
    cache_images=False,  # keep decoded images in memory (small datasets only)
    eval_interval=0,  # log val-split numbers every N epochs (0: none; with selection="val", every epoch)
    checkpoint_interval=1,
    max_keep_ckpts=2,
    log_interval=20,
    selection="last",  # "last" epoch, or "val": best epoch by val R1 (never the test split)
    val_split=0.0,  # > 0: hold out this fraction of training identities as val (datasets without a val split)
    drop_last=False,  # True: the last partial batch of an epoch is not trained on (DataLoader drop_last)
    sampler=dict(type="random"),  # or dict(type="identity", num_instances=4): P x K identity batches
)

optim_wrapper = dict(
    optimizer=dict(type="Adam", lr=1e-5, betas=(0.9, 0.999), eps=1e-3, weight_decay=4e-5),
)

# IRRA/FMFA: linear warm-up 0.1, 0.28, 0.46, 0.64, 0.82 over epoch indices 0-4, 1.0 at index 5, then cosine to 0
# over (e - 5) / (T - 5), stepped per epoch (IRRA solver/lr_scheduler.py:50-56, 64-86; harness/schedulers.py)
param_scheduler = [
    dict(type="WarmupCosineLR", warmup_epochs=5, warmup_factor=0.1, eta_min=0.0, by_epoch=True, begin=0,
         end="max_epochs"),
]

eval = dict(
    batch_size=256,
    chunk_size=512,
    num_workers="auto",
)

# Dataset configs may add `cross_domain = [dict(type="ufine3c", root=...)]`: extra evaluation sets
# scored after training. It is not defined here because _base_ files may not share keys.
