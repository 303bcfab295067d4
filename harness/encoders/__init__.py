"""Shared encoders: open_clip CLIP (ViT-B/16 at 384x128, or a tiny CPU preset) and BERT via transformers."""
