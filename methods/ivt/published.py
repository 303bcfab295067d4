"""The text-to-image numbers published for IVT (R1, R5, R10, mAP, mINP in %; None where the source
gives none): its leaderboard rows marked "paper" on the real datasets."""
from harness.api import PublishedResult

PUBLISHED = (
    PublishedResult("cuhk", 65.59, 83.11, 89.21, None, None, "IVT (as tabulated by IRRA/SEN)"),
    PublishedResult("icfg", 56.04, 73.60, 80.22, None, None, "IVT (as tabulated by IRRA/SEN)"),
    PublishedResult("rstp", 46.70, 70.00, 78.80, None, None, "IVT (as tabulated by IRRA/SEN)"),
)
