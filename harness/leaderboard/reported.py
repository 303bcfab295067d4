"""Numbers reported by the papers (text->image), copied from ../shared/research; shown only in rows
marked 'reported'. Values: R1, R5, R10, mAP, mINP (None where the paper gives none)."""

REPORTED = [
    # method, dataset, R1, R5, R10, mAP, mINP, source
    ("fmfa", "cuhk", 74.16, 90.12, 94.10, 66.66, None, "FMFA paper v2, Table 3"),
    ("fmfa", "icfg", 64.29, 80.48, 85.93, 39.43, None, "FMFA paper v2, Table 4"),
    ("fmfa", "rstp", 61.05, 83.85, 89.80, 48.22, None, "FMFA paper v2, Table 5"),
    ("irra", "cuhk", 73.38, 89.93, 93.71, 66.13, 50.24, "IRRA README / CVPR'23"),
    ("irra", "icfg", 63.46, 80.24, 85.82, 38.05, 7.92, "IRRA README / CVPR'23"),
    ("irra", "rstp", 60.20, 81.30, 88.20, 47.17, 25.28, "IRRA README / CVPR'23"),
    ("ivt", "cuhk", 65.59, 83.11, 89.21, None, None, "IVT (as tabulated by IRRA/SEN)"),
    ("ivt", "icfg", 56.04, 73.60, 80.22, None, None, "IVT (as tabulated by IRRA/SEN)"),
    ("ivt", "rstp", 46.70, 70.00, 78.80, None, None, "IVT (as tabulated by IRRA/SEN)"),
    ("lgur", "cuhk", 65.25, 83.12, 89.00, None, None, "LGUR (as tabulated by SEN)"),
    ("lgur", "icfg", 59.02, 75.32, 81.56, None, None, "LGUR (as tabulated by FNDS)"),
    ("lgur", "ufine6926", 70.69, 84.57, 89.91, 68.93, None, "UFineBench (via Bi-IRRA/ICL tables)"),
]
