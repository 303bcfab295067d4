"""The text-to-image numbers published for IRRA (R1, R5, R10, mAP, mINP in %; None where the source
gives none): its leaderboard rows marked "paper" on the real datasets."""
from harness.api import PublishedResult

PUBLISHED = (
    PublishedResult("cuhk", 73.38, 89.93, 93.71, 66.13, 50.24, "IRRA README / CVPR'23"),
    PublishedResult("icfg", 63.46, 80.24, 85.82, 38.05, 7.92, "IRRA README / CVPR'23"),
    PublishedResult("rstp", 60.20, 81.30, 88.20, 47.17, 25.28, "IRRA README / CVPR'23"),
)
