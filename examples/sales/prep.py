#!/usr/bin/python3
"""Writes examples/sales/data/sales/2026-01.csv .. 2026-03.csv: daily units sold per store and
brand, with a trend and a weekly pattern per pair. Run with /usr/bin/python3 (needs numpy)."""

import csv
import datetime
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
STORES = ["oslo", "lyon", "porto", "graz"]
BRANDS = ["acme", "zenith", "nordic"]


def main():
    out = os.path.join(HERE, "data", "sales")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(5)
    trend = {(s, b): (rng.uniform(20, 80), rng.uniform(-0.2, 0.5)) for s in STORES for b in BRANDS}
    day0 = datetime.date(2026, 1, 1)
    rows = 0
    for month in (1, 2, 3):
        path = os.path.join(out, "2026-%02d.csv" % month)
        with open(path, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["date", "store", "brand", "units", "note"])
            day = datetime.date(2026, month, 1)
            while day.month == month:
                t = (day - day0).days
                for s in STORES:
                    for b in BRANDS:
                        base, slope = trend[(s, b)]
                        units = base + slope * t + 8 * (day.weekday() >= 5) + rng.normal(0, 3)
                        note = "holiday, closed early" if (day.month, day.day) == (1, 1) else ""
                        w.writerow([day.isoformat(), s, b, max(0, round(units)), note])
                        rows += 1
                day += datetime.timedelta(days=1)
    print("wrote %d rows to %s" % (rows, out))


if __name__ == "__main__":
    main()
