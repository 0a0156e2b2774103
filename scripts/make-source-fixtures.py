#!/usr/bin/env python3
"""Writes the small HR table used by src/source tests in every supported format.

Run from the repository root: python3 scripts/make-source-fixtures.py
Needs: pip install openpyxl xlwt odfpy. The outputs are committed, so tests
never need Python. xlsb cannot be produced here (no free writer), so it has no fixture.

Every file holds the same sheet "Personnel": two title lines, the header on
row 3 (with an accented "Prénom" and an unmapped column), a blank row in the
middle, a SIRET typed as a number, dates typed as dates, and formatted but
empty trailing rows, as HR exports have. Workbooks get a second sheet
"Référentiel" to test sheet selection.
"""

import datetime
import os

OUT = os.path.join("tests", "data", "source")

TITLES = ["Export du personnel - Société ACME, siège", "Généré le 01/10/2026"]
HEADER = ["Matricule", "Nom", "Prénom", "Poste", "Courriel", "SIRET", "Code service", "Date de sortie"]
D = datetime.date
# None = empty cell; ints stay numbers in workbooks, dates stay dates.
ROWS = [
    ["E001", "Dupont", "Marie", "Comptable", "marie.dupont@acme.fr", 12345678200010, "COMPTA", None],
    [1005, "Martin", "Éloïse", "Acheteuse", "eloise.martin@acme.fr", 12345678200010, "ACHATS", D(2026, 10, 31)],
    None,  # blank row in the middle
    ["E003", "Lefèvre", "Jean-Noël", None, "jn.lefevre@acme.fr", 12345678200010, None, None],
    ["E004", "Garçon", "Zoé", "Stagiaire", "zoe.garcon@acme.fr", 98765432100014, "COMPTA", None],
    ["E005", "Petit", "Luc", "Contrôleur", " luc.petit@acme.fr ", 12345678200010, "ACHATS", D(2027, 1, 15)],
]
TRAILING = 150  # formatted empty rows after the data
REF = [["Code service", "Libellé"], ["COMPTA", "Comptabilité"], ["ACHATS", "Achats"]]


def grid():
    """Rows as lists (title lines padded to the header width)."""
    out = [[TITLES[0]], [TITLES[1]], HEADER]
    for r in ROWS:
        out.append([None] * len(HEADER) if r is None else r)
    return out


def text(v):
    if v is None:
        return ""
    if isinstance(v, D):
        return v.isoformat()
    return str(v)


def write_csv(name, encoding, delimiter, bom, blank_as_empty_line, newline="\r\n"):
    lines = []
    for r in grid():
        if all(v is None for v in r) and blank_as_empty_line:
            lines.append("")
        else:
            cells = [text(v) for v in r]
            # Excel pads every line to the full width.
            cells += [""] * (len(HEADER) - len(cells))
            lines.append(delimiter.join(quote(c, delimiter) for c in cells))
    for _ in range(20):
        lines.append("" if blank_as_empty_line else delimiter * (len(HEADER) - 1))
    data = newline.join(lines) + newline
    raw = data.encode(encoding)
    if bom:
        raw = {"utf-8": b"\xef\xbb\xbf", "utf-16-le": b"\xff\xfe"}[encoding] + raw
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(raw)


def quote(s, delimiter):
    if delimiter in s or '"' in s or "\n" in s:
        return '"' + s.replace('"', '""') + '"'
    return s


def write_xlsx():
    from openpyxl import Workbook
    from openpyxl.styles import PatternFill

    wb = Workbook()
    ws = wb.active
    ws.title = "Personnel"
    for i, r in enumerate(grid(), start=1):
        for j, v in enumerate(r, start=1):
            if v is not None:
                c = ws.cell(row=i, column=j, value=v)
                if isinstance(v, D):
                    c.number_format = "DD/MM/YYYY"
    fill = PatternFill("solid", fgColor="FFFF00")
    start = len(grid()) + 1
    for i in range(start, start + TRAILING):
        for j in range(1, len(HEADER) + 1):
            ws.cell(row=i, column=j).fill = fill
    ref = wb.create_sheet("Référentiel")
    for r in REF:
        ref.append(r)
    wb.save(os.path.join(OUT, "hr.xlsx"))


def write_xls():
    import xlwt

    wb = xlwt.Workbook(encoding="utf-8")
    ws = wb.add_sheet("Personnel")
    date_style = xlwt.easyxf(num_format_str="DD/MM/YYYY")
    filled = xlwt.easyxf("pattern: pattern solid, fore_colour yellow")
    for i, r in enumerate(grid()):
        for j, v in enumerate(r):
            if v is None:
                continue
            if isinstance(v, D):
                ws.write(i, j, v, date_style)
            else:
                ws.write(i, j, v)
    start = len(grid())
    for i in range(start, start + TRAILING):
        for j in range(len(HEADER)):
            ws.write(i, j, None, filled)
    ref = wb.add_sheet("Référentiel")
    for i, r in enumerate(REF):
        for j, v in enumerate(r):
            ref.write(i, j, v)
    wb.save(os.path.join(OUT, "hr.xls"))


def write_ods():
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.style import Style, TableCellProperties
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    yellow = Style(name="yellow", family="table-cell")
    yellow.addElement(TableCellProperties(backgroundcolor="#ffff00"))
    doc.automaticstyles.addElement(yellow)

    def cell(v):
        if v is None:
            return TableCell()
        if isinstance(v, D):
            c = TableCell(valuetype="date", datevalue=v.isoformat())
            c.addElement(P(text=v.strftime("%d/%m/%Y")))
        elif isinstance(v, int):
            c = TableCell(valuetype="float", value=v)
            c.addElement(P(text=str(v)))
        else:
            c = TableCell(valuetype="string")
            c.addElement(P(text=v))
        return c

    def sheet(name, rows, trailing):
        t = Table(name=name)
        for r in rows:
            tr = TableRow()
            for v in r:
                tr.addElement(cell(v))
            t.addElement(tr)
        if trailing:
            tr = TableRow(numberrowsrepeated=trailing)
            tr.addElement(TableCell(stylename=yellow, numbercolumnsrepeated=len(HEADER)))
            t.addElement(tr)
        doc.spreadsheet.addElement(t)

    sheet("Personnel", grid(), TRAILING)
    sheet("Référentiel", REF, 0)
    doc.save(os.path.join(OUT, "hr.ods"))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    write_csv("hr-utf8.csv", "utf-8", ";", bom=False, blank_as_empty_line=False)
    write_csv("hr-utf8-bom.csv", "utf-8", ",", bom=True, blank_as_empty_line=False, newline="\n")
    write_csv("hr-cp1252.csv", "cp1252", ";", bom=False, blank_as_empty_line=False)
    write_csv("hr-utf16le-tab.csv", "utf-16-le", "\t", bom=True, blank_as_empty_line=True)
    write_xlsx()
    write_xls()
    write_ods()
