#!/usr/bin/env python3
"""The script an IT team would write instead of chorus-sync: pandas reads the
HR workbook and the portal's export, computes the same diff (attach, detach,
move, rights; bad rows as anomalies) and writes CSV reports.

    sync.py --engine calamine|openpyxl HR.xlsx PORTAL.csv CONFIG.toml OUTDIR

It is written the way a competent sysadmin would: vectorised pandas, a merge
instead of loops, the config read for structures, services and profiles.
It prints the counts so the bench can check it found the same plan.
"""

import argparse
import os
import sys
import tomllib

import pandas as pd

TODAY = pd.Timestamp("2026-11-23")
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["calamine", "openpyxl"], required=True)
    ap.add_argument("hr")
    ap.add_argument("portal")
    ap.add_argument("config")
    ap.add_argument("out")
    a = ap.parse_args()

    with open(a.config, "rb") as f:
        cfg = tomllib.load(f)
    src = cfg["sources"][0]
    cols = src["columns"]
    profiles = {k.strip().lower(): v for k, v in src["values"]["rights"].items()}
    inactive = {s.strip().lower() for s in src["values"]["inactive_status"]}
    structures = {s["identifier"]: s for s in cfg["structures"]}

    # The export has a title and a date line above the header.
    hr = pd.read_excel(a.hr, sheet_name=src.get("sheet", 0), header=3, engine=a.engine, dtype=object)
    hr = hr.rename(columns={v: k for k, v in cols.items()})
    hr["row"] = hr.index + 5
    hr["email"] = hr["email"].astype(str).str.strip().str.lower()
    hr["structure"] = hr["structure"].map(lambda v: str(int(v)) if isinstance(v, (int, float)) else str(v).strip())
    hr["service"] = hr["service"].astype(str).str.strip().str.upper()
    hr["rights"] = hr["rights"].astype(str).str.strip().str.lower().map(profiles)
    end = pd.to_datetime(hr["end_date"], errors="coerce", dayfirst=True)
    hr["left"] = (end <= TODAY) | hr["status"].astype(str).str.strip().str.lower().isin(inactive)

    bad_email = ~hr["email"].str.match(EMAIL)
    bad_structure = ~hr["structure"].isin(structures.keys())
    known = hr["structure"].map(lambda s: set(structures[s].get("services", [])) if s in structures else set())
    bad_service = ~pd.Series([s in k for s, k in zip(hr["service"], known)], index=hr.index)
    bad_rights = hr["rights"].isna()
    problems = []
    for mask, field, what in [
        (bad_email, cols["email"], "invalid e-mail"),
        (bad_structure, cols["structure"], "unknown structure"),
        (bad_service & ~bad_structure, cols["service"], "unknown service"),
        (bad_rights, cols["rights"], "unknown profile"),
    ]:
        rows = hr[mask]
        problems.append(pd.DataFrame({"row": rows["row"], "column": field, "email": rows["email"], "problem": what}))
    anomalies = pd.concat(problems).sort_values(["row", "column"])
    bad = bad_email | bad_structure | bad_service | bad_rights
    protected = set(hr.loc[bad & ~bad_email, "email"])
    hr = hr[~bad]

    portal = pd.read_csv(a.portal, sep=";", encoding="utf-8-sig", dtype=str, keep_default_na=False)
    portal = portal.rename(columns={v: k for k, v in cfg["current"]["columns"].items()})
    portal["email"] = portal["email"].str.strip().str.lower()
    portal["service"] = portal["service"].str.strip().str.upper()
    portal = portal[portal["structure"].isin(structures.keys()) & ~portal["email"].isin(protected)]

    keep = hr[~hr["left"]]
    m = keep[["structure", "email", "last_name", "first_name", "service", "rights"]].merge(
        portal[["structure", "email", "service", "rights", "last_name", "first_name"]],
        on=["structure", "email"],
        how="outer",
        suffixes=("", "_portal"),
        indicator=True,
    )
    left_people = set(zip(hr.loc[hr["left"], "structure"], hr.loc[hr["left"], "email"]))
    m["last_name"] = m["last_name"].fillna(m["last_name_portal"])
    m["first_name"] = m["first_name"].fillna(m["first_name_portal"])
    kind = pd.Series(None, index=m.index, dtype=object)
    reason = pd.Series(None, index=m.index, dtype=object)
    both = m["_merge"] == "both"
    kind[m["_merge"] == "left_only"], reason[m["_merge"] == "left_only"] = "attach", "new"
    only_portal = m["_merge"] == "right_only"
    is_leaver = pd.Series([k in left_people for k in zip(m["structure"], m["email"])], index=m.index)
    kind[only_portal] = "detach"
    reason[only_portal & is_leaver] = "left"
    reason[only_portal & ~is_leaver] = "absent"
    moved = both & (m["service"] != m["service_portal"])
    kind[moved], reason[moved] = "move", "service changed"
    rights = both & ~moved & (m["rights"] != m["rights_portal"])
    kind[rights], reason[rights] = "rights", "rights changed"
    m["kind"], m["reason"] = kind, reason
    changes = m[m["kind"].notna()].sort_values(["structure", "service", "email", "kind"])
    managers = {s: v["main_manager"] for s, v in structures.items()}
    names = {s: v["name"] for s, v in structures.items()}

    os.makedirs(a.out, exist_ok=True)
    out = pd.DataFrame(
        {
            "structure": changes["structure"],
            "structure_name": changes["structure"].map(names),
            "kind": changes["kind"],
            "user_email": changes["email"],
            "last_name": changes["last_name"],
            "first_name": changes["first_name"],
            "service_before": changes["service_portal"],
            "rights_before": changes["rights_portal"],
            "service_after": changes["service"],
            "rights_after": changes["rights"],
            "reason": changes["reason"],
            "manager": changes["structure"].map(managers),
        }
    )
    out.to_csv(os.path.join(a.out, "changes.csv"), sep=";", index=False, encoding="utf-8-sig")
    anomalies.to_csv(os.path.join(a.out, "anomalies.csv"), sep=";", index=False, encoding="utf-8-sig")
    summary = out.groupby(["structure", "kind"]).size().unstack(fill_value=0)
    summary.to_csv(os.path.join(a.out, "summary.csv"), sep=";", encoding="utf-8-sig")
    counts = out["kind"].value_counts()
    print(
        "attach={} detach={} move={} rights={} anomalies={}".format(
            *(int(counts.get(k, 0)) for k in ("attach", "detach", "move", "rights")), len(anomalies)
        )
    )


if __name__ == "__main__":
    sys.exit(main())
