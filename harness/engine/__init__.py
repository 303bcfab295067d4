"""Training and evaluation on top of mmengine's Runner."""
