"""The text-to-image numbers published for FMFA (R1, R5, R10, mAP, mINP in %; None where the source
gives none): its leaderboard rows marked "paper" on the real datasets."""
from harness.api import PublishedResult

PUBLISHED = (
    PublishedResult("cuhk", 74.16, 90.12, 94.10, 66.66, None, "FMFA paper v2, Table 3"),
    PublishedResult("icfg", 64.29, 80.48, 85.93, 39.43, None, "FMFA paper v2, Table 4"),
    PublishedResult("rstp", 61.05, 83.85, 89.80, 48.22, None, "FMFA paper v2, Table 5"),
)
