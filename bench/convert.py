#!/usr/bin/env python3
"""Converts the generator's hr-for-convert.csv into hr.ods (odfpy) and hr.xls
(xlwt): Rust has no writer for either. xls holds at most 65,536 rows: beyond
that hr.xls is not written (and the bench says so).

    convert.py DIR ods|xls...
"""

import csv
import datetime
import sys

XLS_MAX_ROWS = 65536


def rows(path):
    with open(path, encoding="utf-8", newline="") as f:
        yield from csv.reader(f, delimiter=";")


def end_date(text):
    d, m, y = text.split("/")
    return datetime.date(int(y), int(m), int(d))


def write_xls(src, dst):
    import xlwt

    data = list(rows(src))
    if len(data) > XLS_MAX_ROWS:
        print(f"hr.xls not written: {len(data)} rows, xls holds {XLS_MAX_ROWS}")
        return
    wb = xlwt.Workbook(encoding="utf-8")
    ws = wb.add_sheet("Personnel")
    date = xlwt.easyxf(num_format_str="dd/mm/yyyy")
    for r, row in enumerate(data):
        for c, v in enumerate(row):
            if r > 2 and c == 7 and v:
                ws.write(r, c, end_date(v), date)
            elif r > 2 and c == 4:
                ws.write(r, c, int(v))
            elif v:
                ws.write(r, c, v)
    wb.save(dst)


def write_ods(src, dst):
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    table = Table(name="Personnel")
    for r, row in enumerate(rows(src)):
        tr = TableRow()
        for c, v in enumerate(row):
            if r > 2 and c == 7 and v:
                cell = TableCell(valuetype="date", datevalue=end_date(v).isoformat())
            elif r > 2 and c == 4:
                cell = TableCell(valuetype="float", value=v)
            else:
                cell = TableCell(valuetype="string")
            if v:
                cell.addElement(P(text=v))
            tr.addElement(cell)
        table.addElement(tr)
    doc.spreadsheet.addElement(table)
    doc.save(dst)


def main():
    d = sys.argv[1]
    for fmt in sys.argv[2:]:
        {"xls": write_xls, "ods": write_ods}[fmt](f"{d}/hr-for-convert.csv", f"{d}/hr.{fmt}")


if __name__ == "__main__":
    main()
