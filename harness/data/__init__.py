"""Dataset loaders (public annotation formats), the built-in synthetic dataset, and torch datasets."""
