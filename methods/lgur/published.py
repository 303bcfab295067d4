"""The text-to-image numbers published for LGUR (R1, R5, R10, mAP, mINP in %; None where the source
gives none): its leaderboard rows marked "paper" on the real datasets."""
from harness.api import PublishedResult

PUBLISHED = (
    PublishedResult("cuhk", 65.25, 83.12, 89.00, None, None, "LGUR (as tabulated by SEN)"),
    PublishedResult("icfg", 59.02, 75.32, 81.56, None, None, "LGUR (as tabulated by FNDS)"),
    PublishedResult("ufine6926", 70.69, 84.57, 89.91, 68.93, None, "UFineBench (via Bi-IRRA/ICL tables)"),
)
