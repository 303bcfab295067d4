"""Text-to-image retrieval metrics (IRRA protocol), computed per query and in chunks."""
from .ranking import PerQuery, evaluate_similarity, evaluate_features, rank_reference, summarise  # noqa: F401
